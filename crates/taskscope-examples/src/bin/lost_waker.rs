//! A hand-written future returns `Pending` without keeping the waker it was given, so
//! nothing can ever wake its task: the task hangs forever without using any CPU.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Waits for a flag that is set elsewhere, but forgets to register for a wake-up.
struct ForgetfulWait;

impl Future for ForgetfulWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        // Bug: should store `_cx.waker().clone()` for whoever sets the flag.
        Poll::Pending
    }
}

#[tokio::main]
async fn main() {
    taskscope::init();
    tokio::spawn(ForgetfulWait); // FAULT: lost_waker
    // How long main waits: longer when a scraper of the metrics endpoint needs the time.
    let wait_ms = std::env::var("LOST_WAKER_WAIT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(300);
    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    println!("lost_waker: main gives up waiting");
}
