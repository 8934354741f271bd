//! The fixed set of ratios the guard measures: which mode over which, on which workload,
//! at which size, and whether a worse figure fails the guard.
//!
//! The set is fixed so that two runs months apart measure the same thing; changing it
//! means recording a new baseline (`guard --bless`).

use crate::mode::Mode;
use crate::workload::Workload;

/// One ratio: `mode`'s wall time over `against`'s, run next to each other in every
/// repetition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Check {
    pub(crate) workload: Workload,
    pub(crate) mode: Mode,
    pub(crate) against: Mode,
    /// Tenths of the workload's full size (10 = full size).
    pub(crate) tenths: u64,
    /// Whether a worse ratio fails the guard. console-subscriber's figures are a reference
    /// for the docs: a change there is not the probe's doing.
    pub(crate) guarded: bool,
    /// The ratio the probe is meant to stay under (`docs/performance.md`'s targets).
    pub(crate) target: Option<f64>,
}

impl Check {
    const fn guarded(workload: Workload, mode: Mode, against: Mode, target: Option<f64>) -> Self {
        Self {
            workload,
            mode,
            against,
            tenths: 10,
            guarded: true,
            target,
        }
    }

    /// console-subscriber at a tenth of the size: at full size it needs minutes a run.
    const fn console(workload: Workload) -> Self {
        Self {
            workload,
            mode: Mode::Console,
            against: Mode::Plain,
            tenths: 1,
            guarded: false,
            target: None,
        }
    }

    /// The name the ratios file and the tables use: `workload:mode/against`.
    pub(crate) fn id(&self) -> String {
        format!("{}:{}/{}", self.workload, self.mode, self.against)
    }

    /// The workload's size in this check.
    pub(crate) fn size(&self) -> u64 {
        (self.workload.full_size() * self.tenths / 10).max(1)
    }
}

/// The hooks route's targets (`#[taskscope::main]`, what most apps pay), wall time over
/// plain tokio built without the probe (mode `plain`: the probe's tokio features count
/// as the probe's cost).
const PINGPONG_TARGET: Option<f64> = Some(1.10);
const SPAWN_TARGET: Option<f64> = Some(1.15);
const TIMERS_TARGET: Option<f64> = Some(1.05);
const ECHO_TARGET: Option<f64> = Some(1.05);
/// The tracing route's one target: it pays tracing's span machinery on every poll, so
/// its other ratios are guarded against getting worse, not held to a target.
const TRACING_PINGPONG_TARGET: Option<f64> = Some(1.5);

/// Every ratio the guard measures, in the order the tables show them.
pub(crate) const CHECKS: [Check; 19] = {
    use Mode::{Plain, Taskscope, TaskscopeInit, TaskscopeLean, TaskscopeNoFlight};
    use Workload::{Echo, Pingpong, Spawn, Timers};
    [
        // The hooks route, `#[taskscope::main]`'s defaults: what most apps pay.
        Check::guarded(Pingpong, Taskscope, Plain, PINGPONG_TARGET),
        Check::guarded(Spawn, Taskscope, Plain, SPAWN_TARGET),
        Check::guarded(Timers, Taskscope, Plain, TIMERS_TARGET),
        Check::guarded(Echo, Taskscope, Plain, ECHO_TARGET),
        // The same, with the probe's default features off: no tokio `tracing` feature,
        // which alone costs message passing a quarter of its speed.
        Check::guarded(Pingpong, TaskscopeLean, Plain, PINGPONG_TARGET),
        Check::guarded(Spawn, TaskscopeLean, Plain, SPAWN_TARGET),
        Check::guarded(Timers, TaskscopeLean, Plain, TIMERS_TARGET),
        Check::guarded(Echo, TaskscopeLean, Plain, ECHO_TARGET),
        // The tracing route, `taskscope::init()`.
        Check::guarded(Pingpong, TaskscopeInit, Plain, TRACING_PINGPONG_TARGET),
        Check::guarded(Spawn, TaskscopeInit, Plain, Option::None),
        Check::guarded(Timers, TaskscopeInit, Plain, Option::None),
        Check::guarded(Echo, TaskscopeInit, Plain, Option::None),
        // The flight recorder's own cost: the hooks route with it over without it.
        Check::guarded(Pingpong, Taskscope, TaskscopeNoFlight, Option::None),
        Check::guarded(Spawn, Taskscope, TaskscopeNoFlight, Option::None),
        Check::guarded(Timers, Taskscope, TaskscopeNoFlight, Option::None),
        // console-subscriber, for reference.
        Check::console(Pingpong),
        Check::console(Spawn),
        Check::console(Timers),
        Check::console(Echo),
    ]
};

/// Runs that are paired with each other: one workload at one size, and every mode its
/// checks need. Each repetition runs them all in turn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    pub(crate) workload: Workload,
    pub(crate) size: u64,
    /// In the harness's usual order (the baseline, `plain`, first).
    pub(crate) modes: Vec<Mode>,
}

/// The groups `checks` need, in the order of their first check.
pub(crate) fn groups(checks: &[Check]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for check in checks {
        let index = match groups
            .iter()
            .position(|g| g.workload == check.workload && g.size == check.size())
        {
            Some(index) => index,
            None => {
                groups.push(Group {
                    workload: check.workload,
                    size: check.size(),
                    modes: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let modes = &mut groups[index].modes;
        for mode in [check.against, check.mode] {
            if !modes.contains(&mode) {
                modes.push(mode);
            }
        }
        modes.sort();
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_its_own_name() {
        let mut ids: Vec<String> = CHECKS.iter().map(Check::id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len());
    }

    #[test]
    fn console_runs_in_groups_of_its_own_at_a_tenth_of_the_size() {
        let groups = groups(&CHECKS);
        let pingpong: Vec<&Group> = groups
            .iter()
            .filter(|g| g.workload == Workload::Pingpong)
            .collect();
        assert_eq!(pingpong.len(), 2);
        assert_eq!(
            pingpong[0].modes,
            [
                Mode::Plain,
                Mode::Taskscope,
                Mode::TaskscopeLean,
                Mode::TaskscopeInit,
                Mode::TaskscopeNoFlight
            ]
        );
        assert_eq!(pingpong[1].modes, [Mode::Plain, Mode::Console]);
        assert_eq!(pingpong[1].size, Workload::Pingpong.full_size() / 10);
    }
}
