//! Model checks of the lock-free structures the probe's hot path relies on.
//!
//! Each model compiles the probe's own source file (`#[path]`) against loom's atomics
//! (the `sync` module below stands in for the probe's `crate::base::sync`) and lets loom run
//! every interleaving, and every value a weakly ordered load may return, of a few threads
//! doing what app threads and the probe's thread do to it.
//!
//! The cell's change flag (`change_flag.rs`) is not modelled here: loom 0.7 lets a
//! read-modify-write read a value older than a store that happens before it (a swap after
//! joining the storing thread can miss its store, whatever the orderings), so a model of a
//! swap-based flag fails where the C++ memory model says it cannot.
#![allow(dead_code, unreachable_pub)]

mod base {
    pub(crate) mod sync {
        pub(crate) mod atomic {
            pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering, fence};
        }
    }
}

#[path = "../src/tasks/poll_slot.rs"]
mod poll_slot;
#[path = "../src/tasks/ring.rs"]
mod ring;
#[path = "../src/tasks/task_index.rs"]
mod task_index;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64};
use loom::thread;

use poll_slot::{PollSlot, Polling};
use ring::{Event, EventKind, EventRing};
use task_index::{EMPTY, Slot};

fn empty_slot() -> Slot<u8> {
    Slot {
        id: AtomicU64::new(EMPTY),
        value: AtomicPtr::new(std::ptr::null_mut()),
    }
}

/// A stand-in for task `id`'s cell: a distinct address, never dereferenced.
fn cell_of(id: u64) -> *const u8 {
    (id as usize * 0x100) as *const u8
}

/// Asserts that whatever the slot says about each of `ids` is that task's own cell.
fn assert_only_own_cells(slot: &Slot<u8>, ids: &[u64]) {
    for &id in ids {
        if let Some(found) = slot.get(id) {
            assert_eq!(found, cell_of(id), "task {id} found another task's cell");
        }
    }
}

/// The spawn of task 2 fills the slot while a poll of task 1, which missed the index,
/// refills it: with two writers interleaved, the slot could end up naming task 1 with
/// task 2's cell.
#[test]
fn a_spawn_and_a_refill_never_pair_one_tasks_id_with_anothers_cell() {
    loom::model(|| {
        let slot = Arc::new(empty_slot());
        let refill = {
            let slot = slot.clone();
            thread::spawn(move || {
                slot.fill(1, cell_of(1));
            })
        };
        slot.fill(2, cell_of(2));
        refill.join().unwrap();
        assert_only_own_cells(&slot, &[1, 2]);
    });
}

/// A poll of task 1 looks itself up (and refills on a miss) while task 2 is spawned and
/// task 3, which the slot names, ends: the poll only ever gets its own cell.
#[test]
fn a_poll_finds_its_own_cell_or_nothing_while_others_write_the_slot() {
    loom::model(|| {
        let slot = Arc::new(empty_slot());
        slot.fill(3, cell_of(3));
        let spawn = {
            let slot = slot.clone();
            thread::spawn(move || {
                slot.fill(2, cell_of(2));
            })
        };
        let end = {
            let slot = slot.clone();
            thread::spawn(move || slot.clear(3))
        };
        match slot.get(1) {
            Some(found) => assert_eq!(found, cell_of(1)),
            None => {
                slot.fill(1, cell_of(1));
            }
        }
        spawn.join().unwrap();
        end.join().unwrap();
        assert_only_own_cells(&slot, &[1, 2, 3]);
        assert!(slot.get(3).is_none(), "an ended task is still named");
    });
}

/// tokio may reuse an id once its task has ended: the new task's first poll must never
/// find the old task's (freed) cell, even while another task is spawned into the slot.
#[test]
fn a_reused_id_never_finds_the_ended_tasks_cell() {
    loom::model(|| {
        let slot = Arc::new(empty_slot());
        let old = 0x1000 as *const u8;
        slot.fill(1, old);
        let other = {
            let slot = slot.clone();
            thread::spawn(move || {
                slot.fill(2, cell_of(2));
            })
        };
        // Task 1 ends, then a new task 1 is spawned and polled (one thread: tokio orders
        // a task's end before the reuse of its id).
        slot.clear(1);
        slot.fill(1, cell_of(1));
        if let Some(found) = slot.get(1) {
            assert_eq!(
                found,
                cell_of(1),
                "the new task found the ended task's cell"
            );
        }
        other.join().unwrap();
        assert_only_own_cells(&slot, &[1, 2]);
    });
}

/// The watchdog reads a thread's slot while the thread starts and ends polls: a reading
/// pairs a task with its own poll's start, never with another's.
#[test]
fn the_watchdog_never_pairs_a_task_with_another_polls_start() {
    loom::model(|| {
        let slot = Arc::new(PollSlot {
            seq: AtomicU32::new(0),
            task: AtomicU64::new(0),
            started_ns: AtomicU64::new(0),
        });
        let polls = [
            Polling {
                task: 1,
                started_ns: 10,
            },
            Polling {
                task: 2,
                started_ns: 20,
            },
        ];
        let app = {
            let slot = slot.clone();
            thread::spawn(move || {
                slot.publish(Some(polls[0]));
                slot.publish(Some(polls[1]));
            })
        };
        if let Some(reading) = slot.read() {
            assert!(polls.contains(&reading), "torn reading {reading:?}");
        }
        app.join().unwrap();
        assert_eq!(slot.read(), Some(polls[1]));
    });
}

/// Event `n` of a thread's ring: every word derived from `n`, so a torn copy shows.
fn ring_event(n: u64) -> Event {
    Event {
        kind: if n % 2 == 1 {
            EventKind::PollStart
        } else {
            EventKind::PollEnd
        },
        task: n,
        at_ns: n * 10,
        other: n + 100,
    }
}

/// An app thread appends three events to a ring of two, over the oldest, while the
/// probe's reader drains it as they come: each event is copied whole, once, in order, or counted
/// as lost, a slot rewritten under a copy of it is never handed on, and the last event
/// always arrives.
#[test]
fn a_threads_ring_hands_each_event_to_the_reader_once_whole_or_counts_it() {
    loom::model(|| {
        let ring = Arc::new(EventRing::new(2));
        let app = {
            let ring = ring.clone();
            thread::spawn(move || {
                for n in 1..=3 {
                    ring.push(ring_event(n));
                }
            })
        };
        let mut seen = Vec::new();
        // The reader waits for the first event: the app's side only ever stores, and loom
        // explores orders only around a load that saw a store, so a reader that drained
        // an empty ring first would be the one order ever tried.
        while ring.drain(|e| seen.push(e)) == 0 && ring.overflowed() == 0 {
            thread::yield_now();
        }
        ring.drain(|e| seen.push(e));
        app.join().unwrap();
        ring.drain(|e| seen.push(e));
        for pair in seen.windows(2) {
            assert!(pair[0].task < pair[1].task, "out of order: {seen:?}");
        }
        for e in &seen {
            assert_eq!(*e, ring_event(e.task), "a torn event");
        }
        assert_eq!(
            seen.len() as u64 + ring.overflowed(),
            3,
            "an event neither copied nor counted, or both: {seen:?}"
        );
        assert_eq!(
            seen.last().map(|e| e.task),
            Some(3),
            "the newest event lost"
        );
    });
}
