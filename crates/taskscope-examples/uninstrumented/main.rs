//! Built by the `probe_uninstrumented` end-to-end test (`tests/tests/`) as a standalone package without
//! `--cfg tokio_unstable` (see that test for the manifest).

#[tokio::main]
async fn main() {
    taskscope::init();
    let task = tokio::spawn(async { std::thread::sleep(std::time::Duration::from_millis(300)) });
    task.await.unwrap();
    println!("uninstrumented: done");
}
