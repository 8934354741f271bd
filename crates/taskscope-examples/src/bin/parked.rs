//! Tasks that can never finish, each parked at a different `.await`, left alive when
//! `main` returns: what `check` must name is the `.await` each one waits at, not only the
//! line that spawned it.
//!
//! * `drain` waits on a channel whose sender is never dropped (kept alive on purpose);
//! * `wait_for_go` waits on a `Notify` nobody notifies;
//! * `supervise` awaits the `JoinHandle` of `wait_for_go`, itself stuck;
//! * `first_half`/`second_half` await each other's `JoinHandle`: an await cycle.
//!
//! With `PARKED_TASKS=N`, N more tasks wait at the same line of `drain_many`, for the
//! grouping and cost of dumps with many tasks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

async fn drain(mut rx: mpsc::Receiver<u32>) {
    while let Some(value) = rx.recv().await {
        // AWAIT: drain
        println!("got {value}");
    }
}

async fn wait_for_go(go: Arc<Notify>) {
    go.notified().await; // AWAIT: wait_for_go
}

async fn supervise(worker: JoinHandle<()>) {
    let _ = worker.await; // AWAIT: supervise
}

async fn first_half(other: oneshot::Receiver<JoinHandle<()>>) {
    if let Ok(second) = other.await {
        let _ = second.await; // AWAIT: first_half
    }
}

async fn second_half(first: JoinHandle<()>) {
    let _ = first.await; // AWAIT: second_half
}

async fn drain_many(go: Arc<Notify>) {
    go.notified().await; // AWAIT: drain_many
}

#[taskscope::main]
async fn main() {
    let (tx, rx) = mpsc::channel::<u32>(1);
    tokio::spawn(drain(rx));
    // The sender outlives everything: `drain` can never see the channel close.
    std::mem::forget(tx);

    let go = Arc::new(Notify::new());
    let stuck = tokio::spawn(wait_for_go(go.clone()));
    tokio::spawn(supervise(stuck));

    let (handle_tx, handle_rx) = oneshot::channel();
    let first = tokio::spawn(first_half(handle_rx));
    let second = tokio::spawn(second_half(first));
    let _ = handle_tx.send(second);

    let many: usize = std::env::var("PARKED_TASKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for _ in 0..many {
        tokio::spawn(drain_many(go.clone()));
    }
    // Every task reaches its `.await` before `main` returns.
    tokio::time::sleep(Duration::from_millis(200)).await;
}
