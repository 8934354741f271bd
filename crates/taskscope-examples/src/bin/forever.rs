//! Runs until killed: a few periodic tasks and a short stall every second. Used to test
//! recordings of processes that never exit cleanly.

use std::time::Duration;

#[tokio::main]
async fn main() {
    taskscope::init();
    for i in 0..4u64 {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20 + i * 10)).await;
            }
        });
    }
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        tokio::spawn(async { std::thread::sleep(Duration::from_millis(150)) });
    }
}
