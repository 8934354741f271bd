//! What counts as a finding and how bad it is: kinds, severities, the stall threshold and
//! the allowances.

use std::fmt;

use super::allowance::Allowance;

/// The kinds of finding, in the order reports list them when all else is equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub(crate) enum FindingKind {
    /// A poll that kept its thread longer than the stall threshold.
    Stall,
    /// A pending task with no waker left: nothing can ever wake it.
    LostWaker,
    /// A task still pending when its runtime shut down.
    AliveAtShutdown,
    /// A task that panicked.
    Panic,
    /// Live tasks from one spawn site kept rising through the watch window.
    Growth,
    /// Tasks waiting on each other in a cycle (locks, permits, joins) past
    /// `--deadlock-after`.
    Deadlock,
}

impl FindingKind {
    pub(crate) const ALL: [Self; 6] = [
        Self::Stall,
        Self::LostWaker,
        Self::AliveAtShutdown,
        Self::Panic,
        Self::Growth,
        Self::Deadlock,
    ];

    /// The name used on the command line and in every report.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Stall => "stall",
            Self::LostWaker => "lost_waker",
            Self::AliveAtShutdown => "alive_at_shutdown",
            Self::Panic => "panic",
            Self::Growth => "growth",
            Self::Deadlock => "deadlock",
        }
    }

    /// Stalls and leaks break programs; a panic in a task may be handled by whoever joins
    /// it, and growth may be load, so those two only warn unless asked otherwise.
    pub(crate) fn default_severity(self) -> Severity {
        match self {
            Self::Stall | Self::LostWaker | Self::AliveAtShutdown | Self::Deadlock => {
                Severity::Error
            }
            Self::Panic | Self::Growth => Severity::Warning,
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a finding is. Errors fail the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// Everything the judge needs besides the model.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    severities: [Severity; 6],
    allowances: Vec<Allowance>,
    /// Whether an allowance that accepted nothing fails the check (otherwise a note).
    pub(crate) fail_on_unused_allowance: bool,
    /// Polls at least this long are stalls.
    pub(crate) stall_threshold_ns: u64,
    /// Whether to look for growth: only meaningful over a watch window of a running
    /// service, not over a program that ran to its end.
    pub(crate) growth: bool,
    /// A cycle of waits standing at least this long is a deadlock.
    pub(crate) deadlock_after_ns: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            severities: FindingKind::ALL.map(FindingKind::default_severity),
            allowances: Vec::new(),
            fail_on_unused_allowance: false,
            stall_threshold_ns: 100_000_000,
            growth: false,
            deadlock_after_ns: 1_000_000_000,
        }
    }
}

impl Policy {
    /// Makes `kinds` errors (`--fail-on`).
    pub(crate) fn fail_on(&mut self, kinds: &[FindingKind]) {
        for &kind in kinds {
            self.severities[kind as usize] = Severity::Error;
        }
    }

    /// Makes `kinds` warnings (`--warn-on`).
    pub(crate) fn warn_on(&mut self, kinds: &[FindingKind]) {
        for &kind in kinds {
            self.severities[kind as usize] = Severity::Warning;
        }
    }

    /// Accepts what `allowance` names (`--allow`, `taskscope.toml`).
    pub(crate) fn allow(&mut self, allowance: Allowance) {
        self.allowances.push(allowance);
    }

    pub(crate) fn allowances(&self) -> &[Allowance] {
        &self.allowances
    }

    pub(crate) fn severity(&self, kind: FindingKind) -> Severity {
        self.severities[kind as usize]
    }
}
