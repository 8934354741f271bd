//! A task parked on a `Notify` nobody notifies, left alive when `main` returns, on a
//! current-thread runtime: its dump is taken from inside the runtime, as tokio requires.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

async fn wait_for_go(go: Arc<Notify>) {
    go.notified().await; // AWAIT: wait_for_go
}

#[taskscope::main(flavor = "current_thread")]
async fn main() {
    let go = Arc::new(Notify::new());
    tokio::spawn(wait_for_go(go.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
}
