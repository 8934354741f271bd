//! Two tasks, each awaiting the other's `JoinHandle` (through `taskscope::join`, which
//! tells the probe whose end a task waits for): neither can ever end.

use std::time::Duration;

use tokio::sync::oneshot;

#[tokio::main]
async fn main() {
    taskscope::init();
    let (give_peer, peer) = oneshot::channel::<tokio::task::JoinHandle<()>>();
    let first = tokio::spawn(async move {
        // FAULT: deadlock
        let second = peer.await.unwrap();
        taskscope::join(second).await.unwrap(); // WAITS: first
    });
    let second = tokio::spawn(async move {
        // CYCLE: second
        taskscope::join(first).await.unwrap(); // WAITS: second
    });
    give_peer.send(second).unwrap();
    tokio::time::sleep(Duration::from_millis(4000)).await;
    println!("deadlock_join: main returns; the two tasks still wait for each other");
}
