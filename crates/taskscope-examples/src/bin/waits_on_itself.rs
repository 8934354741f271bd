//! A task waits on a channel whose only sender it owns itself: nothing can ever send, and
//! the channel never closes. tokio's `mpsc` has no resource spans, so taskscope cannot
//! name the sender's owner: `check` reports the task alive at shutdown, parked at the
//! `recv().await`, and no deadlock.

use std::time::Duration;

use tokio::sync::mpsc;

#[tokio::main]
async fn main() {
    taskscope::init();
    tokio::spawn(async {
        // FAULT: alive_at_shutdown
        let (replies, mut inbox) = mpsc::channel::<u64>(8);
        let _keep_for_later = replies;
        inbox.recv().await // WAITS: itself
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    println!("waits_on_itself: main returns; the task still waits on its own channel");
}
