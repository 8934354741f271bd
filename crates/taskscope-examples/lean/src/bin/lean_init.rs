//! `taskscope::init()` in a `#[tokio::main]` app whose probe is built without its default
//! feature `tracing-route`, so that tokio has no `tracing` feature and makes no task span:
//! the probe must say so, and `taskscope check` must not pass what it could not see.

use std::time::Duration;

#[tokio::main]
async fn main() {
    taskscope::init();
    for _ in 0..40 {
        tokio::spawn(async { tokio::task::yield_now().await })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("lean_init: done");
}
