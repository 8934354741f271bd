//! On plain stable tokio: a task blocks its worker thread for 700 ms, and a ticker that
//! nobody stops is still alive when `main` returns.

use std::time::Duration;

#[taskscope::main(worker_threads = 2)]
async fn main() {
    tokio::spawn(async {
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        loop {
            ticks.tick().await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let blocker = tokio::spawn(async {
        std::thread::sleep(Duration::from_millis(700)); // BLOCKS
    });
    blocker.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!("stable_stall: done");
}
