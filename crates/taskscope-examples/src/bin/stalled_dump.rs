//! A service with one task parked on a `Notify` and, half a second in, one poll that
//! blocks its worker until a line arrives on stdin (Enter, when run by hand; a test holds
//! the pipe): a dump asked for during that stall cannot pause the runtime, and must say so
//! at once instead of holding the other workers. Whoever started it ends the stall, so a
//! test needs no clock to know the dump was answered while the stall lasted.

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
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line); // FAULT: stall
    });
    tokio::time::sleep(Duration::from_secs(60)).await;
}
