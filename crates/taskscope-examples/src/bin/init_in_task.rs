//! `taskscope::init()` called from a task of a runtime that was already running: the body
//! of `main` runs on a thread the probe cannot tell from inside that task, so a stall in
//! the body would not be seen. The probe says so once on stderr, and `taskscope check` in
//! a note naming the call.

use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tokio::spawn(async { taskscope::init() }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!("init_in_task: done");
}
