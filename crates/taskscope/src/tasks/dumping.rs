//! Whether a task dump is re-polling tasks now, or has just: the task lifecycle and the
//! routes discount a dump's own polls and wakes, which are not the app's. `detect/dump`
//! sets it ([`Dumping`]) around each dump it takes.

use std::sync::atomic::{AtomicU64, Ordering};

/// Whether the current poll is a dump's re-poll of a task (tokio polls every task once in
/// a tracing mode to see where it waits): not one of the app's polls, so not counted.
/// The hooks route never sees these (tokio runs no hooks for them); the tracing route
/// sees their span enters.
#[inline]
pub(crate) fn is_tracing() -> bool {
    #[cfg(taskscope_dumps)]
    return tokio::runtime::Handle::is_tracing();
    #[cfg(not(taskscope_dumps))]
    false
}

/// Dumps being taken now, and the probe time until which the last one's aftermath lasts.
static DUMPING: AtomicU64 = AtomicU64::new(0);
static AFTERMATH_UNTIL_NS: AtomicU64 = AtomicU64::new(0);
/// How long after a dump its wakes are still arriving (tokio wakes every traced task once
/// the scheduler regains control).
#[cfg_attr(not(taskscope_dumps), allow(dead_code))]
const AFTERMATH_NS: u64 = 50_000_000;

/// Whether a dump is being taken or has just been: the wakes seen now are mostly the
/// dump's own (waking every task it re-polled), which are not counted as the app's wakes.
/// Best effort, and only for the statistics: a waker's count takes every clone, drop and
/// wake alike, the dump's too (`tasks/lifecycle.rs`, `waker_op`), so it never depends on
/// when this window closes.
///
/// On the tracing route's wake path: two loads while no dump is near, the clock only
/// within an aftermath (which then ends itself).
#[inline]
pub(crate) fn in_aftermath() -> bool {
    if DUMPING.load(Ordering::Acquire) > 0 {
        return true;
    }
    let until = AFTERMATH_UNTIL_NS.load(Ordering::Acquire);
    if until == 0 {
        return false;
    }
    if crate::base::clock::now_ns() < until {
        return true;
    }
    // Over: later wakes skip the clock again.
    let _ = AFTERMATH_UNTIL_NS.compare_exchange(until, 0, Ordering::AcqRel, Ordering::Relaxed);
    false
}

/// Marks a dump in progress until dropped.
#[cfg_attr(not(taskscope_dumps), allow(dead_code))]
pub(crate) struct Dumping(());

impl Dumping {
    #[cfg_attr(not(taskscope_dumps), allow(dead_code))]
    pub(crate) fn start() -> Self {
        DUMPING.fetch_add(1, Ordering::AcqRel);
        Self(())
    }
}

impl Drop for Dumping {
    fn drop(&mut self) {
        AFTERMATH_UNTIL_NS.fetch_max(
            crate::base::clock::now_ns() + AFTERMATH_NS,
            Ordering::AcqRel,
        );
        DUMPING.fetch_sub(1, Ordering::AcqRel);
    }
}
