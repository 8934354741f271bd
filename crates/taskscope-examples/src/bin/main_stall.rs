//! The body of `main` itself blocks its thread. With `#[taskscope::main]` the probe is
//! installed before the runtime starts, so the body's own poll is watched too.

use std::time::Duration;

#[taskscope::main(flavor = "current_thread")]
async fn main() {
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::thread::sleep(Duration::from_millis(400));
    println!("main_stall: done");
}
