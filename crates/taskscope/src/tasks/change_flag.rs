//! "Changed since the aggregator last looked": how a task's cell tells the probe's thread
//! that it has something new to publish.
//!
//! App threads write a cell's counters with plain relaxed stores and then mark the flag;
//! the aggregator takes the flag and then reads the counters. The mark is a release and
//! the take an acquire, so a reader that takes a mark sees every counter written before
//! it: otherwise (on weakly ordered CPUs, or after the compiler moves a relaxed store)
//! the aggregator could clear the flag of a task's last poll, read the poll before it, and
//! never publish the last one. On x86 both orderings cost nothing over relaxed ones.

use crate::base::sync::atomic::{AtomicBool, Ordering};

/// A flag the writers of some data set after writing it, and its reader clears before
/// reading it.
#[derive(Debug)]
pub(crate) struct ChangeFlag(AtomicBool);

impl ChangeFlag {
    /// A flag that already says "changed" (a new cell has everything to publish).
    pub(crate) fn new_marked() -> Self {
        Self(AtomicBool::new(true))
    }

    /// Says that data written before this call is new.
    #[inline]
    pub(crate) fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether anything changed since the last take; the data read after a `true` is at
    /// least as new as the mark that set it.
    pub(crate) fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}
