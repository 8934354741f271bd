//! A service's shutdown written the usual way: its background tasks watch a
//! `CancellationToken`, a `broadcast` channel or a `Notify`; at shutdown the body tells them
//! to stop and returns from `main` at once, without joining them. Each task was woken to
//! exit; whether a worker polls it before the runtime drops is a race. Nothing here leaks.
//!
//! With `FORGOTTEN_TICKER=1` it also starts a detached ticker nobody ever stops: a real
//! leak, whatever the timing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

#[taskscope::main]
async fn main() {
    let token = CancellationToken::new();
    let (stop_tx, _) = broadcast::channel::<()>(1);
    let stop_notify = Arc::new(Notify::new());
    for _ in 0..4 {
        let token = token.clone();
        tokio::spawn(async move { token.cancelled().await });
        let mut stop = stop_tx.subscribe();
        tokio::spawn(async move {
            let _ = stop.recv().await;
        });
        let stop_notify = stop_notify.clone();
        tokio::spawn(async move { stop_notify.notified().await });
    }
    if std::env::var_os("FORGOTTEN_TICKER").is_some() {
        tokio::spawn(async {
            // FAULT: alive_at_shutdown
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            loop {
                tick.tick().await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    token.cancel();
    let _ = stop_tx.send(());
    stop_notify.notify_waiters();
}
