//! A busy service that returns from `main` with its tasks still running: 200 tickers
//! waking every millisecond and four spawners starting short tasks in batches of 64 (tens
//! of thousands a second). The run queues are deep at every instant, including the one
//! at which the runtime is dumped before shutting down; the process must still exit.

use std::time::Duration;

#[taskscope::main]
async fn main() {
    for _ in 0..200 {
        tokio::spawn(async {
            // FAULT: alive_at_shutdown
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
    }
    for _ in 0..4 {
        tokio::spawn(async {
            loop {
                for _ in 0..64 {
                    tokio::spawn(tokio::task::yield_now());
                }
                tokio::task::yield_now().await;
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("main returns");
}
