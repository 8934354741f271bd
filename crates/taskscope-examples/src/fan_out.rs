//! Parents driving children through sub-executors, the shape of many services: each
//! parent runs rounds of four children, alternately through a `FuturesUnordered` and a
//! `join_all`; each child sleeps 1–2 ms (a tokio leaf) and hands its number to its parent
//! through a channel. A child that is never polled again stops its parent for good.
//!
//! `main` prints `progress rounds=R lagging=L` every 200 ms: `R` rounds done by all the
//! parents, `L` parents that finished no round in the last [`LAGGING_AFTER`]. A dump that
//! strands a child shows as a parent lagging for ever; a dump that freezes the runtime, as
//! no more lines at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;

/// A parent that finished no round for this long is lagging (generous: a loaded machine
/// can hold a runtime for a second).
pub const LAGGING_AFTER: Duration = Duration::from_secs(3);

const CHILDREN: u64 = 4;

/// The number of parents: `PARENTS` from the environment, 256 by default.
pub fn parents() -> usize {
    std::env::var("PARENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

async fn child(number: u64, hand_off: mpsc::Sender<u64>) {
    tokio::time::sleep(Duration::from_micros(1_000 + number * 300)).await;
    let _ = hand_off.send(number).await;
}

/// One parent: rounds for ever, each counted in `rounds` once all four numbers came back.
async fn parent(rounds: Arc<AtomicU64>) {
    let (hand_off, mut numbers) = mpsc::channel(CHILDREN as usize);
    for round in 0u64.. {
        let children = (0..CHILDREN).map(|n| child(n, hand_off.clone()));
        if round % 2 == 0 {
            let mut unordered: FuturesUnordered<_> = children.collect();
            while unordered.next().await.is_some() {}
        } else {
            join_all(children).await;
        }
        let mut sum = 0;
        for _ in 0..CHILDREN {
            sum += numbers.recv().await.expect("the parent holds a sender");
        }
        assert_eq!(sum, (0..CHILDREN).sum::<u64>());
        rounds.fetch_add(1, Ordering::Relaxed);
    }
}

/// Spawns the parents and reports progress for ever.
pub async fn run() {
    let counters: Vec<Arc<AtomicU64>> = (0..parents())
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    for rounds in &counters {
        tokio::spawn(parent(rounds.clone()));
    }
    let mut last_round_at = vec![(0, Instant::now()); counters.len()];
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = Instant::now();
        let mut total = 0;
        let mut lagging = 0;
        for (rounds, (seen, at)) in counters.iter().zip(&mut last_round_at) {
            let rounds = rounds.load(Ordering::Relaxed);
            total += rounds;
            if rounds != *seen {
                *seen = rounds;
                *at = now;
            } else if now - *at > LAGGING_AFTER {
                lagging += 1;
            }
        }
        println!("progress rounds={total} lagging={lagging}");
    }
}
