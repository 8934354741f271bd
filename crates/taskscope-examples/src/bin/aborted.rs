//! An idle task is aborted: its outcome is "cancelled", not "completed" and not "alive at
//! shutdown".

use std::time::Duration;

#[tokio::main]
async fn main() {
    taskscope::init();
    let (_keep_open, never_sent) = tokio::sync::oneshot::channel::<()>();
    let waiting = tokio::spawn(async move {
        let _ = never_sent.await;
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    waiting.abort();
    let result = waiting.await;
    println!(
        "aborted: cancelled = {}",
        result.unwrap_err().is_cancelled()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
}
