//! A service that installs a panic hook of its own once it runs (to report panics its own
//! way, slowly: as a crash reporter might), replacing the process's hook after the probe
//! installed its own. A task panics; its `JoinHandle` catches it.

use std::time::Duration;

#[taskscope::main(worker_threads = 2)]
async fn main() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("app hook: {info}");
        // Stands for a reporter that symbolizes and uploads: it holds the thread.
        std::thread::sleep(Duration::from_millis(300));
    }));
    let job = tokio::spawn(async { panic!("the job failed") }); // FAULT: panic
    assert!(job.await.unwrap_err().is_panic());
    println!("custom_panic_hook: done");
}
