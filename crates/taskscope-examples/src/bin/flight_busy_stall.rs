//! Both workers bounce messages between task pairs as fast as they can, far more events
//! than a flight-recorder ring holds between two copies, until one bouncing task blocks
//! its worker for 300 ms while the other worker bounces on. What the stall's window must
//! show is what the stalled worker did just before: its last polls, up to the stalled
//! one, with the older part of the busy stretch counted as lost, however many events the
//! other worker writes meanwhile. Run with a small recorder (`TASKSCOPE_FLIGHT=2MiB`: rings
//! of 1,024 events, windows of 8,192) so that any machine is busy enough to fill its rings
//! and outgrow the window.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// Set once the stall is over: the message pairs stop.
static STOP: AtomicBool = AtomicBool::new(false);

const PAIRS: usize = 32;

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

/// As [`bounce`] for a second, then blocks its worker in the middle of its bouncing.
async fn bounce_then_block(mut inbox: mpsc::Receiver<u64>, outbox: mpsc::Sender<u64>) {
    let started = Instant::now();
    while let Some(n) = inbox.recv().await {
        if started.elapsed() >= Duration::from_secs(1) {
            render_report();
            return;
        }
        if outbox.send(n + 1).await.is_err() {
            return;
        }
    }
}

/// A pair of channels of one message, the first one holding the first message.
async fn pair() -> [(mpsc::Sender<u64>, mpsc::Receiver<u64>); 2] {
    let (to_a, a_inbox) = mpsc::channel(1);
    let (to_b, b_inbox) = mpsc::channel(1);
    to_a.send(0).await.expect("a fresh channel has room");
    [(to_b, a_inbox), (to_a, b_inbox)]
}

#[taskscope::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        let [(to_b, a_inbox), (to_a, b_inbox)] = pair().await;
        pairs.push(tokio::spawn(bounce(a_inbox, to_b)));
        pairs.push(tokio::spawn(bounce(b_inbox, to_a)));
    }
    let [(to_b, a_inbox), (to_a, b_inbox)] = pair().await;
    let stalled = tokio::spawn(bounce_then_block(a_inbox, to_b)); // FAULT: stall
    pairs.push(tokio::spawn(bounce(b_inbox, to_a)));
    let _ = stalled.await;
    STOP.store(true, Ordering::Relaxed);
    for pair in pairs {
        let _ = pair.await;
    }
    println!("flight_busy_stall: done");
}
