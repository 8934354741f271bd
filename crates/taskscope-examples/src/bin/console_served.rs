//! An app instrumented with the taskscope probe that also serves tokio-console's protocol
//! (`TASKSCOPE_CONSOLE_BIND=127.0.0.1:6669`), so tokio-console can attach to it too.
//!
//! It spawns five long-lived tasks from one line, then runs until killed, or for
//! `CONSOLE_APP_SECONDS` (default 120).

use std::time::Duration;

#[tokio::main]
async fn main() {
    taskscope::init();
    for _ in 0..5 {
        tokio::spawn(async {
            // SPAWNS: 5
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    let seconds = std::env::var("CONSOLE_APP_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}
