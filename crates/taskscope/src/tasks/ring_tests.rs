//! The ring's own tests, apart from `ring.rs` because the model checks compile that file
//! against loom's atomics, which only work inside a model.

use crate::tasks::ring::{Event, EventKind, EventRing};
use std::sync::atomic::Ordering;

fn event(n: u64) -> Event {
    Event {
        kind: EventKind::PollStart,
        task: n,
        at_ns: n * 10,
        other: n % 7,
    }
}

#[test]
fn a_full_ring_keeps_the_newest_events_and_counts_the_ones_it_wrote_over() {
    let ring = EventRing::new(4);
    for n in 1..=6 {
        ring.push(event(n));
    }
    let mut seen = Vec::new();
    assert_eq!(ring.drain(|e| seen.push(e.task)), 4);
    assert_eq!(seen, [3, 4, 5, 6], "the newest events are kept, in order");
    assert_eq!(ring.overflowed(), 2);
    ring.push(event(7));
    seen.clear();
    assert_eq!(ring.drain(|e| seen.push(e.task)), 1);
    assert_eq!(seen, [7], "a drained ring hands on only what came after");
    assert_eq!(ring.overflowed(), 2);
}

#[test]
fn a_ring_lapped_many_times_between_drains_keeps_its_last_lap() {
    let ring = EventRing::new(8);
    for n in 1..=1_000 {
        ring.push(event(n));
    }
    let mut seen = Vec::new();
    ring.drain(|e| seen.push(e.task));
    assert_eq!(seen, (993..=1_000).collect::<Vec<_>>());
    assert_eq!(ring.overflowed(), 992);
}

#[test]
fn every_kind_and_word_survives_the_ring() {
    let ring = EventRing::new(8);
    let kinds = [
        EventKind::PollStart,
        EventKind::PollEnd,
        EventKind::Spawn,
        EventKind::End,
        EventKind::Wake,
    ];
    for (n, kind) in kinds.into_iter().enumerate() {
        ring.push(Event {
            kind,
            task: u64::MAX - n as u64,
            at_ns: n as u64,
            other: (1 << 55) - n as u64,
        });
    }
    let mut seen = Vec::new();
    ring.drain(|e| seen.push(e));
    assert_eq!(seen.len(), kinds.len());
    for (n, e) in seen.iter().enumerate() {
        assert_eq!(e.kind, kinds[n]);
        assert_eq!(e.task, u64::MAX - n as u64);
        assert_eq!(e.other, (1 << 55) - n as u64);
    }
}

/// One writer pushes a million numbered events through a small ring while the reader
/// drains it from another thread: every event arrives exactly once, in order and
/// whole, or is counted as lost; none is both, none is neither, and the last one arrives.
#[test]
fn under_stress_every_event_is_copied_once_whole_or_counted() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    const EVENTS: u64 = 1_000_000;
    let ring = Arc::new(EventRing::new(1024));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (ring, done) = (ring.clone(), done.clone());
        std::thread::spawn(move || {
            for n in 1..=EVENTS {
                ring.push(event(n));
            }
            done.store(true, Ordering::Release);
        })
    };
    let mut received = 0;
    let mut last = 0;
    let mut check = |e: Event| {
        assert!(e.task > last, "event {} after {last}", e.task);
        assert_eq!(e, event(e.task), "a torn event");
        last = e.task;
        received += 1;
    };
    loop {
        let finished = done.load(Ordering::Acquire);
        ring.drain(&mut check);
        if finished {
            break;
        }
        std::thread::yield_now();
    }
    writer.join().unwrap();
    assert_eq!(received + ring.overflowed(), EVENTS);
    assert_eq!(last, EVENTS, "the newest event is never the one lost");
}
