//! Runs until killed with many live tasks (5,000, or `BUSY_TASKS`) that keep waking up,
//! plus a steady churn of short ones, so that every publish carries a large delta. The
//! probe's memory and CPU under hostile clients are measured against it.

use std::time::Duration;

#[tokio::main]
async fn main() {
    taskscope::init();
    let tasks: u64 = std::env::var("BUSY_TASKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    for i in 0..tasks {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50 + i % 450)).await;
            }
        });
    }
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        for _ in 0..10 {
            tokio::spawn(async { tokio::task::yield_now().await });
        }
    }
}
