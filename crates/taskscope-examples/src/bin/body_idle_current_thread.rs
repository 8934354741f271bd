//! Not a fault: the body of a current-thread `#[tokio::main]` that calls
//! `taskscope::init()` and then only waits (a long timer, a channel fed by a task now and
//! then, a timer again). Its thread is parked in the runtime throughout: watched from
//! outside, it shows no stall.

use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    taskscope::init();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for tick in 0..5 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            sender.send(tick).await.unwrap();
        }
    });
    let mut received = 0;
    while receiver.recv().await.is_some() {
        received += 1;
    }
    // The ticking task has ended: its end is decided well before the runtime shuts down.
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!("body_idle_current_thread: done, {received} ticks");
}
