//! A service with one task parked on a `Notify` and, half a second in, one poll that
//! blocks its worker for two seconds: a dump asked for during that stall cannot pause the
//! runtime, and must say so at once instead of holding the other workers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

async fn wait_forever(go: Arc<Notify>) {
    go.notified().await; // AWAIT: wait_forever
}

#[taskscope::main]
async fn main() {
    let go = Arc::new(Notify::new());
    tokio::spawn(wait_forever(go.clone()));
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        std::thread::sleep(Duration::from_secs(2)); // FAULT: stall
    });
    tokio::time::sleep(Duration::from_secs(60)).await;
}
