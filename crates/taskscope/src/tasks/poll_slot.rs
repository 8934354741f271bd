//! A thread's published "polling task T since t0", written by that thread alone and read
//! by the watchdog from its own thread.
//!
//! A seqlock with one writer: the sequence is odd while the writer changes the pair, and
//! a reader keeps a reading only if it saw the same even sequence before and after it,
//! with a fence in between. So the watchdog never pairs one poll's task with another
//! poll's start time, and the poll path pays two relaxed stores and two plain sequence
//! stores, no read-modify-write. Only the owning thread ([`crate::tasks::threads`]) publishes.

use crate::base::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// What a slot said at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Polling {
    pub(crate) task: u64,
    pub(crate) started_ns: u64,
}

/// The seqlock: (sequence, task, start).
#[derive(Debug)]
pub(crate) struct PollSlot {
    pub(crate) seq: AtomicU32,
    pub(crate) task: AtomicU64,
    pub(crate) started_ns: AtomicU64,
}

impl PollSlot {
    /// Publishes the poll now in progress (`None`: between polls). The owning thread only.
    pub(crate) fn publish(&self, polling: Option<Polling>) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        let Polling { task, started_ns } = polling.unwrap_or(Polling {
            task: 0,
            started_ns: 0,
        });
        self.task.store(task, Ordering::Relaxed);
        self.started_ns.store(started_ns, Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// A consistent reading, or `None` when the thread is between polls or was caught
    /// mid-update (the watchdog simply looks again next round).
    pub(crate) fn read(&self) -> Option<Polling> {
        let before = self.seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            return None;
        }
        let task = self.task.load(Ordering::Relaxed);
        let started_ns = self.started_ns.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != before || task == 0 {
            return None;
        }
        Some(Polling { task, started_ns })
    }

    /// Changes whenever a poll starts or returns on this thread: two equal readings mean
    /// no poll the probe sees started or ended in between.
    pub(crate) fn generation(&self) -> u32 {
        self.seq.load(Ordering::Acquire)
    }
}
