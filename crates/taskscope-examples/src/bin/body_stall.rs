//! The body of a multi-thread `#[tokio::main]` blocks its thread right after
//! `taskscope::init()`. tokio was polling that body before the probe existed, so no span
//! marks its polls: the probe watches its thread from outside and reports the stall at
//! the `init()` call.

use std::time::Duration;

#[tokio::main]
async fn main() {
    taskscope::init(); // FAULT: stall
    std::thread::sleep(Duration::from_millis(800)); // BLOCKS
    // Parked in the runtime again: the probe sees the stall end.
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("body_stall: done");
}
