//! Short-lived tasks the probe counted by spawn site instead of sending one by one: each
//! site's tally, kept whole so the dashboard can show which sites churn, what they cost
//! and their longest poll, and `check` can count them as completed.

use taskscope_api::v1;

use super::task::Kind;

/// The tally of one spawn site: every task in it completed (no panic, no cancellation),
/// had no name and never polled as long as the probe's stall threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Folded {
    pub(crate) kind: Kind,
    pub(crate) tasks: u64,
    /// Their polls, added up.
    pub(crate) polls: u64,
    /// Their time in polls, added up.
    pub(crate) busy_ns: u64,
    /// The longest poll of any of them.
    pub(crate) max_poll_ns: u64,
}

impl Folded {
    /// The site's tally as the wire sends it: the whole of it since the probe started, so
    /// it replaces what was known of the site rather than adding to it.
    pub(crate) fn from_wire(folded: &v1::FoldedTasks) -> Self {
        Self {
            kind: Kind::from_wire(folded.kind),
            tasks: folded.tasks,
            polls: folded.polls,
            busy_ns: folded.busy_ns,
            max_poll_ns: folded.max_poll_ns,
        }
    }
}
