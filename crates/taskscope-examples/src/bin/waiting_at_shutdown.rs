//! Tasks parked on every common kind of wait when the runtime shuts down: each is alive at
//! shutdown, and none has lost its waker — the waker is held by the channel, timer, lock or
//! socket it waits on. A lost-waker check that flags any of them is wrong.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify, mpsc, oneshot};

#[tokio::main]
async fn main() {
    taskscope::init();
    let (tx, mut rx) = mpsc::channel::<()>(1);
    tokio::task::Builder::new()
        .name("mpsc")
        .spawn(async move { rx.recv().await })
        .unwrap();
    let (once_tx, once_rx) = oneshot::channel::<()>();
    tokio::task::Builder::new()
        .name("oneshot")
        .spawn(once_rx)
        .unwrap();
    let notify = Arc::new(Notify::new());
    let waiting_notify = notify.clone();
    tokio::task::Builder::new()
        .name("notify")
        .spawn(async move { waiting_notify.notified().await })
        .unwrap();
    tokio::task::Builder::new()
        .name("sleep")
        .spawn(tokio::time::sleep(Duration::from_secs(3600)))
        .unwrap();
    let (a_tx, mut a) = mpsc::channel::<()>(1);
    tokio::task::Builder::new()
        .name("select")
        .spawn(async move {
            tokio::select! {
                _ = a.recv() => {}
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            }
        })
        .unwrap();
    tokio::task::Builder::new()
        .name("joinset")
        .spawn(async {
            let mut set = tokio::task::JoinSet::new();
            set.spawn(std::future::pending::<()>());
            set.join_next().await
        })
        .unwrap();
    let lock = Arc::new(Mutex::new(()));
    let held = lock.clone().lock_owned().await;
    tokio::task::Builder::new()
        .name("lock")
        .spawn(async move {
            let _guard = lock.lock().await;
        })
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::task::Builder::new()
        .name("accept")
        .spawn(async move { listener.accept().await.map(|_| ()) })
        .unwrap();
    // A task that completes while a blocking task it started still runs: its span closes
    // late, when the blocking task's span (its child) is gone. It must still count as
    // completed.
    tokio::task::Builder::new()
        .name("detaches_blocking_work")
        .spawn(async {
            drop(tokio::task::spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(300))
            }));
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Keep every sender, notifier and guard alive past the runtime's shutdown: dropping
    // them here would wake (and maybe finish) their waiters first.
    std::mem::forget((tx, once_tx, notify, a_tx, held));
    println!("waiting_at_shutdown: main returns with every waiter still waiting");
}
