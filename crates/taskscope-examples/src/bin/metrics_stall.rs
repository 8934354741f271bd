//! A service scraped by a monitoring system (`TASKSCOPE_METRICS_BIND`): one task blocks
//! its worker for 300 ms every half second, and tasks from eight other sites wait quietly.
//! Runs until killed, or for `METRICS_STALL_SECS` seconds (default 120).

use std::future::pending;
use std::time::Duration;

fn flush_cache_synchronously() {
    // Stands for any blocking call made from async code.
    std::thread::sleep(Duration::from_millis(300)); // BLOCKS
}

#[taskscope::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = std::env::var("METRICS_STALL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    // Eight spawn sites, one line each: more than a small TASKSCOPE_METRICS_MAX_SITES.
    let waiting = [
        tokio::spawn(pending::<()>()),
        tokio::spawn(pending::<()>()),
        tokio::spawn(pending::<()>()),
        tokio::spawn(pending::<()>()),
        tokio::spawn(pending::<()>()),
        tokio::spawn(pending::<()>()),
        tokio::spawn(pending::<()>()),
        tokio::spawn(pending::<()>()),
    ];
    let stalling = tokio::spawn(async {
        // FAULT: stall
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            flush_cache_synchronously();
        }
    });
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stalling.abort();
    for task in waiting {
        task.abort();
    }
    println!("metrics_stall: done");
}
