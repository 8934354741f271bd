//! A task calls `std::thread::sleep` inside async code: its worker thread can run nothing
//! else for 600 ms. taskscope reports the stall while it happens.

use std::time::Duration;

fn load_config_slowly() {
    // Stands for any blocking call made from async code: file I/O, a sync HTTP client...
    std::thread::sleep(Duration::from_millis(600)); // BLOCKS
}

#[tokio::main]
async fn main() {
    taskscope::init();
    // Give a watcher time to connect before the stall.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stalled = tokio::spawn(async { load_config_slowly() }); // FAULT: stall
    stalled.await.unwrap();
    println!("blocking_sleep: done");
}
