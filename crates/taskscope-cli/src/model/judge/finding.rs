//! A finding: one problem at one spawn site, as every report shows it.

use super::policy::{FindingKind, Severity};
use crate::model::names;
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
    /// Where the example task was parked, innermost frame first (leaks and lost wakers,
    /// when a dump reached it): the awaited call, then the user's `.await`s.
    pub(crate) waiting_at: Vec<Frame>,
    pub(crate) detail: Detail,
}

/// What only some kinds carry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Detail {
    Stall {
        /// The worst stall of the group: its number in its process, and duration.
        stall_id: u64,
        duration_ns: u64,
        thread: String,
        /// Innermost user frame first; empty when no stack was captured.
        backtrace: Vec<Frame>,
        /// The timeline of its flight-recorder window, once `check --trace-dir` wrote it.
        trace: Option<std::path::PathBuf>,
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
    Deadlock {
        /// Every task of the cycle, in cycle order: each waits for the next.
        tasks: Vec<CycleTask>,
    },
}

/// One task of a deadlock.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CycleTask {
    pub(crate) task_id: u64,
    pub(crate) task_name: Option<String>,
    pub(crate) spawn_location: String,
    /// Its await chain, innermost first, when a dump reached it.
    pub(crate) waiting_at: Vec<Frame>,
    /// What it waits on, for people: "`Mutex` created at src/db.rs:12:5, held by task 7".
    pub(crate) waits_on: String,
    /// The next task of the cycle.
    pub(crate) waits_for: u64,
}

/// Leaked tasks from one spawn site, folded into the leak they descend from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Descendant {
    pub(crate) spawn_location: String,
    pub(crate) count: u64,
}

impl Finding {
    /// The source position a code-review annotation should point at: for a stall, the
    /// innermost frame in the user's own code (where the blocking call is); for a parked
    /// task, the `.await` in the user's code it waits at; otherwise, or without such a
    /// frame, the spawn call.
    pub(crate) fn source_location(&self) -> &str {
        let frames = match &self.detail {
            Detail::Stall { backtrace, .. } => backtrace,
            _ => &self.waiting_at,
        };
        innermost_user_location(frames).unwrap_or(&self.spawn_location)
    }

    /// Where the task waited, for one line of a report: the `.await` in the user's code
    /// (`file:line:col`), the function it is in, and the call awaited there.
    pub(crate) fn waiting_point(&self) -> Option<WaitingPoint<'_>> {
        let at = self
            .waiting_at
            .iter()
            .position(|frame| frame.location.as_deref().is_some_and(is_user_location))?;
        let frame = &self.waiting_at[at];
        Some(WaitingPoint {
            location: frame.location.as_deref()?,
            function: names::short_function(&frame.function),
            awaited: names::awaited_call(&self.waiting_at, at)
                .map(|call| names::short_call(&call.function)),
        })
    }
}

/// One line's worth of an await chain.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct WaitingPoint<'a> {
    pub(crate) location: &'a str,
    pub(crate) function: &'a str,
    /// The library call awaited there (e.g. `Receiver<T>::recv`), when known.
    pub(crate) awaited: Option<String>,
}

impl std::fmt::Display for WaitingPoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "waiting at {} in `{}`", self.location, self.function)?;
        if let Some(awaited) = &self.awaited {
            write!(f, " (on `{awaited}`)")?;
        }
        Ok(())
    }
}

fn innermost_user_location(frames: &[Frame]) -> Option<&str> {
    frames
        .iter()
        .filter_map(|frame| frame.location.as_deref())
        .find(|location| is_user_location(location))
}
