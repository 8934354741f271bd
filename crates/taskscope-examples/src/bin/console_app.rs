//! A service instrumented with tokio-console's `console_subscriber::init()` instead of the
//! taskscope probe: what `taskscope attach` and `taskscope check --attach` read over
//! tokio-console's protocol (`TOKIO_CONSOLE_BIND`, default `127.0.0.1:6669`).
//!
//! One task blocks its worker thread for 2.5 s every few seconds; another waits on a
//! future that never keeps its waker; a few healthy tasks tick. It runs until killed, or
//! for `CONSOLE_APP_SECONDS` (default 120).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Returns `Pending` without keeping the waker it was given: nothing can wake its task.
struct ForgetfulWait;

impl Future for ForgetfulWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

fn refresh_cache_synchronously() {
    // Stands for any blocking call made from async code.
    std::thread::sleep(Duration::from_millis(2500)); // BLOCKS
}

#[tokio::main]
async fn main() {
    console_subscriber::init();
    tokio::spawn(ForgetfulWait); // FAULT: lost_waker
    tokio::spawn(async {
        // FAULT: stall
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            refresh_cache_synchronously();
        }
    });
    for _ in 0..3 {
        tokio::spawn(async {
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
