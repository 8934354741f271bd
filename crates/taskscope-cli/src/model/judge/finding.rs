//! A finding: one problem at one spawn site, as every report shows it.

use super::policy::{FindingKind, Severity};
use crate::model::stall::{Frame, is_user_location};

/// One problem, grouped by kind and spawn location: `count` occurrences, the worst shown.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Finding {
    pub(crate) kind: FindingKind,
    pub(crate) severity: Severity,
    /// Occurrences grouped into this finding (stalls, or tasks).
    pub(crate) count: u64,
    /// `file:line:col` of the spawn call.
    pub(crate) spawn_location: String,
    /// The example shown (the worst occurrence).
    pub(crate) task_id: u64,
    pub(crate) task_name: Option<String>,
    /// One line for people.
    pub(crate) message: String,
    pub(crate) pid: u32,
    pub(crate) program: String,
    /// The libtest test the example belongs to, when it ran under one.
    pub(crate) test: Option<String>,
    pub(crate) detail: Detail,
}

/// What only some kinds carry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Detail {
    Stall {
        /// The worst stall of the group.
        duration_ns: u64,
        thread: String,
        /// Innermost user frame first; empty when no stack was captured.
        backtrace: Vec<Frame>,
    },
    LostWaker,
    AliveAtShutdown {
        /// The leaked tasks spawned under the ones reported (folded into them), by spawn
        /// site, most first.
        descendants: Vec<Descendant>,
    },
    Panic {
        message: String,
        /// Where it panicked, when known.
        location: Option<String>,
        /// How long the panic hooks held the thread (0 when not told).
        held_ns: u64,
    },
    Growth {
        from: u32,
        to: u32,
    },
}

/// Leaked tasks from one spawn site, folded into the leak they descend from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Descendant {
    pub(crate) spawn_location: String,
    pub(crate) count: u64,
}

impl Finding {
    /// The source position a code-review annotation should point at: for a stall, the
    /// innermost frame in the user's own code (where the blocking call is); otherwise, or
    /// without such a frame, the spawn call.
    pub(crate) fn source_location(&self) -> &str {
        if let Detail::Stall { backtrace, .. } = &self.detail
            && let Some(location) = backtrace
                .iter()
                .filter_map(|frame| frame.location.as_deref())
                .find(|location| is_user_location(location))
        {
            return location;
        }
        &self.spawn_location
    }
}
