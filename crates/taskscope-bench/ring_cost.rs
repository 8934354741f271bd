//! What one flight-recorder event costs the app's thread: the probe's own `ring.rs`,
//! compiled alone with optimisations, pushed to from one thread and drained from another.
//! Not a cargo target (it would build the whole harness's dependencies in release for a
//! few lines); from the workspace root:
//!
//! ```sh
//! rustc -O --edition 2024 crates/taskscope-bench/ring_cost.rs -o /tmp/ring_cost && /tmp/ring_cost
//! ```
#![allow(dead_code)]

/// Stands for the probe's `crate::base::sync`: std's atomics, as in the probe.
mod base {
    pub mod sync {
        pub mod atomic {
            pub use std::sync::atomic::{AtomicU64, Ordering, fence};
        }
    }
}
#[path = "../taskscope/src/tasks/ring.rs"]
mod ring;
use ring::*;
use std::hint::black_box;
use std::time::{Duration, Instant};
fn main() {
    // Accepted pushes: batches of 2,048 into a ring of 4,096 that a reader thread drains
    // between batches (as the watchdog drains every scan), timing the pushes only.
    let ring = std::sync::Arc::new(EventRing::new(4096));
    let mut pushed = 0u64;
    let mut spent = Duration::ZERO;
    for batch in 0..20_000u64 {
        let t = Instant::now();
        for i in 0..2048u64 {
            black_box(&*ring).push(Event {
                kind: EventKind::PollStart,
                task: black_box(batch * 2048 + i),
                at_ns: i,
                other: 0,
            });
        }
        spent += t.elapsed();
        pushed += 2048;
        let r = ring.clone();
        std::thread::spawn(move || {
            r.drain(|e| {
                black_box(e);
            });
        })
        .join()
        .unwrap();
    }
    assert_eq!(ring.overflowed(), 0);
    println!(
        "accepted: {:.2} ns/event over {pushed}",
        spent.as_nanos() as f64 / pushed as f64
    );
    // A ring nobody drains: every push writes over the oldest event.
    let full = EventRing::new(4096);
    for i in 0..4096 {
        full.push(Event {
            kind: EventKind::PollEnd,
            task: i,
            at_ns: i,
            other: 0,
        });
    }
    let t = Instant::now();
    const N: u64 = 10_000_000;
    for i in 0..N {
        black_box(&full).push(Event {
            kind: EventKind::PollEnd,
            task: black_box(i),
            at_ns: i,
            other: 0,
        });
    }
    println!(
        "over the oldest (ring full): {:.2} ns/event",
        t.elapsed().as_nanos() as f64 / N as f64,
    );
    let mut kept = 0;
    full.drain(|_| kept += 1);
    assert_eq!((kept, full.overflowed()), (4096, N));
}
