//! Both workers bounce messages between task pairs as fast as they can, far more events
//! than a flight-recorder ring holds between two copies, until one task blocks its worker
//! for 300 ms. What the stall's window must show is what that worker did just before: its
//! last polls, up to the stalled one, with the older part of the busy stretch counted as
//! lost. Run with a small recorder (`TASKSCOPE_FLIGHT=256KiB`) so that any machine is busy
//! enough to fill its rings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

/// Set by the stalling task just before it blocks: the message pairs stop, so that the
/// window around the stall is not crowded out by the worker left running.
static STOP: AtomicBool = AtomicBool::new(false);

const PAIRS: usize = 4;

fn render_report() {
    // Stands for any blocking call made from async code.
    std::thread::sleep(Duration::from_millis(300)); // BLOCKS
}

/// A task that answers every message with the next number, until told to stop.
async fn bounce(mut inbox: mpsc::Receiver<u64>, outbox: mpsc::Sender<u64>) {
    while let Some(n) = inbox.recv().await {
        if STOP.load(Ordering::Relaxed) || outbox.send(n + 1).await.is_err() {
            break;
        }
    }
}

#[taskscope::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        let (to_a, a_inbox) = mpsc::channel(1);
        let (to_b, b_inbox) = mpsc::channel(1);
        to_a.send(0).await.expect("a fresh channel has room");
        pairs.push(tokio::spawn(bounce(a_inbox, to_b)));
        pairs.push(tokio::spawn(bounce(b_inbox, to_a)));
    }
    let stalled = tokio::spawn(async {
        // FAULT: stall
        // A second of bouncing: long enough for a loaded machine to fill its rings too.
        tokio::time::sleep(Duration::from_secs(1)).await;
        STOP.store(true, Ordering::Relaxed);
        render_report();
    });
    let _ = stalled.await;
    for pair in pairs {
        let _ = pair.await;
    }
    println!("flight_busy_stall: done");
}
