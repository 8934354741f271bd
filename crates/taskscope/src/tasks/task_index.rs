//! The lock-free index in front of the hooks route's task table: a direct-mapped cache of
//! `(task id, cell)` pairs that lets a poll find its task's cell with three loads.
//!
//! Each [`Slot`] is a seqlock whose sequence is the task id itself. Several threads may
//! write one slot: the spawn of a task whose id maps to it (filled before tokio can poll
//! the task: its spawn hook runs before the task is scheduled), the poll of any task with
//! such an id that missed the index (refilled from the table), and the end of the task
//! the slot names (cleared). Two writers must never interleave: `(X, cell of Y)` left in a
//! slot would hand every later poll of X another task's cell. So a writer first *claims*
//! the slot, swapping the id it saw for [`WRITING`] in one compare-and-swap, writes, and
//! releases it with the new id; a writer that loses the claim gives up (the slot is only
//! a cache: the table still holds the cell, and the next miss fills it again).
//!
//! Why a reader (a poll of task X, looking for X) never gets a wrong cell:
//! * A reading is kept only if the slot held X before and after the cell was read, with a
//!   fence in between: a claim made in between changed the id to [`WRITING`] and is seen.
//! * Only X's own writers store X: X's spawn (finished before X's first poll) and a miss
//!   of one of X's polls, which tokio never runs two at a time; the reader is such a poll,
//!   so no X can be stored while it reads (no ABA).
//! * tokio promises an id is unique among live tasks only (`task::Id`: it may be reused
//!   once the task ended and its `JoinHandle` is gone). A new task X' reusing X's id could
//!   otherwise meet a stale `(X, cell of dead X)`: X's end clears its slot, X's writers are
//!   all finished by then (its spawn before its first poll, its misses inside its polls),
//!   and X''s spawn fills the slot with its own cell, or loses the claim to a writer of
//!   another id. Either way no pair for X but X''s own is left once X' can be polled.

use crate::base::sync::atomic::{AtomicPtr, AtomicU64, Ordering, fence};

/// The id of a slot that names no task (tokio's ids start at 1).
pub(crate) const EMPTY: u64 = 0;
/// The id of a slot while the one writer that claimed it changes it (no task has it).
pub(crate) const WRITING: u64 = u64::MAX;

/// One index entry: `(id, value)`, or [`EMPTY`], or [`WRITING`] while claimed.
pub(crate) struct Slot<T> {
    pub(crate) id: AtomicU64,
    pub(crate) value: AtomicPtr<T>,
}

impl<T> Slot<T> {
    /// Stores `(id, value)`, unless another writer holds the slot or takes it first.
    pub(crate) fn fill(&self, id: u64, value: *const T) -> bool {
        if !self.claim(|_| true) {
            return false;
        }
        self.release(id, value);
        true
    }

    /// Empties the slot if it still names `id`.
    pub(crate) fn clear(&self, id: u64) {
        if self.claim(|seen| seen == id) {
            self.release(EMPTY, std::ptr::null());
        }
    }

    /// The value stored for `id`, if the slot names `id` and did not change while read.
    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) fn get(&self, id: u64) -> Option<*const T> {
        if self.id.load(Ordering::Acquire) != id {
            return None;
        }
        let value = self.value.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        (self.id.load(Ordering::Relaxed) == id).then_some(value.cast_const())
    }

    /// Takes the slot for one writer, if it names an id `wanted` accepts and no other
    /// writer holds it or takes it first.
    fn claim(&self, wanted: impl Fn(u64) -> bool) -> bool {
        let seen = self.id.load(Ordering::Relaxed);
        if seen == WRITING || !wanted(seen) {
            return false;
        }
        if self
            .id
            .compare_exchange(seen, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // A reader that sees the value written next must also see the claim (seqlock).
        fence(Ordering::Release);
        true
    }

    /// Ends a claim: the value first, then the id that makes it visible.
    fn release(&self, id: u64, value: *const T) {
        self.value.store(value.cast_mut(), Ordering::Relaxed);
        self.id.store(id, Ordering::Release);
    }
}
