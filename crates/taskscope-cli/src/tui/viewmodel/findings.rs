//! What the judge says about the model, per task: the dashboard's flags.
//!
//! Computed from the judge's own occurrences ([`rules::occurrences`]), so a task is flagged
//! on screen exactly when `taskscope check` would report it. Only outcomes that are not
//! findings (a cancelled task) and whether a stall is still going on come from the model.

use std::collections::HashMap;

use crate::model::judge::finding::Detail;
use crate::model::judge::policy::{FindingKind, Policy};
use crate::model::judge::rules;
use crate::model::stall::Phase;
use crate::model::task::Outcome;
use crate::model::{LocationId, Model};

/// A task's flags, as a small set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Flags(u8);

impl Flags {
    /// A poll of it is stalling its thread right now.
    pub(crate) const STALL_NOW: Self = Self(1);
    /// It stalled its thread before.
    pub(crate) const STALLED: Self = Self(1 << 1);
    /// Idle with no waker left: nothing can wake it.
    pub(crate) const LOST_WAKER: Self = Self(1 << 2);
    /// Still pending when its runtime shut down or the process exited.
    pub(crate) const ALIVE_AT_SHUTDOWN: Self = Self(1 << 3);
    /// It panicked.
    pub(crate) const PANICKED: Self = Self(1 << 4);
    /// It was cancelled (aborted, dropped by a `JoinSet`): not a finding, worth seeing.
    pub(crate) const CANCELLED: Self = Self(1 << 5);
    /// It waits in a cycle of waits: a deadlock.
    pub(crate) const DEADLOCKED: Self = Self(1 << 6);

    /// Every flag with its glyph (for narrow terminals), its word and what it means,
    /// worst first: the order the flag column shows them in.
    pub(crate) const GLYPHS: [(Self, char, &'static str, &'static str); 7] = [
        (Self::STALL_NOW, 'S', "STALL", "stalling its thread now"),
        (
            Self::DEADLOCKED,
            'D',
            "DEADLOCK",
            "deadlock: waits in a cycle of waits",
        ),
        (
            Self::LOST_WAKER,
            'W',
            "LOST WAKER",
            "lost waker: nothing can wake it",
        ),
        (Self::ALIVE_AT_SHUTDOWN, 'A', "LEAKED", "alive at shutdown"),
        (Self::STALLED, 's', "STALL", "stalled before"),
        (Self::PANICKED, 'P', "PANIC", "panicked"),
        (Self::CANCELLED, 'c', "cancelled", "cancelled"),
    ];

    pub(crate) fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub(crate) fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Bigger is worse: what sorting by the flag column orders by.
    pub(crate) fn rank(self) -> u8 {
        let mut rank = 0u8;
        for (index, (flag, ..)) in Self::GLYPHS.iter().enumerate() {
            if self.contains(*flag) {
                rank |= 1 << (Self::GLYPHS.len() - 1 - index);
            }
        }
        rank
    }

    /// The glyphs of the flags set, worst first.
    pub(crate) fn glyphs(self) -> String {
        Self::GLYPHS
            .iter()
            .filter(|(flag, ..)| self.contains(*flag))
            .map(|&(_, glyph, ..)| glyph)
            .collect()
    }

    /// The worst flag in words, e.g. `STALL 1.0s` (a stall with the task's worst stall,
    /// `stall_ns`), `LOST WAKER`, `PANIC`; empty without flags.
    pub(crate) fn words(self, stall_ns: Option<u64>) -> String {
        let Some(&(flag, _, word, _)) = Self::GLYPHS.iter().find(|(flag, ..)| self.contains(*flag))
        else {
            return String::new();
        };
        match stall_ns {
            Some(ns) if flag == Self::STALL_NOW || flag == Self::STALLED => {
                format!("{word} {}", crate::tui::viewmodel::metrics::short_ns(ns))
            }
            _ => word.to_owned(),
        }
    }

    /// What each flag set means, worst first.
    pub(crate) fn descriptions(self) -> Vec<&'static str> {
        Self::GLYPHS
            .iter()
            .filter(|(flag, ..)| self.contains(*flag))
            .map(|&(.., text)| text)
            .collect()
    }
}

/// A spawn site the judge says keeps growing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GrowingSite {
    pub(crate) site: LocationId,
    pub(crate) from: u32,
    pub(crate) to: u32,
}

/// The judge's view of one model, indexed for the dashboard.
#[derive(Clone, Debug, Default)]
pub(crate) struct Findings {
    flags: HashMap<u64, Flags>,
    /// The longest stall of each task that stalled (so far, for one going on).
    worst_stall_ns: HashMap<u64, u64>,
    /// Stalls the judge counts (at least the policy's threshold long).
    pub(crate) stalls_total: usize,
    /// Of those, the ones still going on.
    pub(crate) stalls_now: usize,
    /// Tasks with a lost waker, by id.
    pub(crate) lost_wakers: Vec<u64>,
    /// Tasks alive at shutdown, by id.
    pub(crate) alive_at_shutdown: Vec<u64>,
    pub(crate) growing: Vec<GrowingSite>,
}

impl Findings {
    pub(crate) fn compute(model: &Model, policy: &Policy) -> Self {
        let mut this = Self::default();
        let mut stalled_tasks = HashMap::new();
        for occurrence in rules::occurrences(model, policy) {
            let id = occurrence.task_id;
            match occurrence.kind {
                FindingKind::Stall => {
                    this.stalls_total += 1;
                    stalled_tasks.insert(id, ());
                    this.flag(id, Flags::STALLED);
                    if let Detail::Stall { duration_ns, .. } = occurrence.detail {
                        let worst = this.worst_stall_ns.entry(id).or_default();
                        *worst = (*worst).max(duration_ns);
                    }
                }
                FindingKind::LostWaker => {
                    this.lost_wakers.push(id);
                    this.flag(id, Flags::LOST_WAKER);
                }
                FindingKind::AliveAtShutdown => {
                    this.alive_at_shutdown.push(id);
                    this.flag(id, Flags::ALIVE_AT_SHUTDOWN);
                }
                FindingKind::Panic => this.flag(id, Flags::PANICKED),
                FindingKind::Deadlock => {
                    if let Detail::Deadlock { tasks } = &occurrence.detail {
                        for task in tasks {
                            this.flag(task.task_id, Flags::DEADLOCKED);
                        }
                    }
                }
                FindingKind::Growth => {
                    if let Detail::Growth { from, to } = occurrence.detail
                        && let Some(site) = site_id(model, &occurrence.spawn_location)
                    {
                        this.growing.push(GrowingSite { site, from, to });
                    }
                }
            }
        }
        // The judge counts a stall once it is long enough; whether it is still going on
        // is the model's fact.
        for stall in model.stalls() {
            if stall.phase == Phase::Ongoing
                && stalled_tasks.contains_key(&stall.task_id)
                && stall.duration_at(model.now_ns()) >= policy.stall_threshold_ns
            {
                this.stalls_now += 1;
                this.flag(stall.task_id, Flags::STALL_NOW);
            }
        }
        for task in model.tasks() {
            if matches!(task.outcome(), Some(Outcome::Cancelled)) {
                this.flag(task.id, Flags::CANCELLED);
            }
        }
        this.lost_wakers.sort_unstable();
        this.alive_at_shutdown.sort_unstable();
        this.growing
            .sort_by_key(|g| std::cmp::Reverse(g.to - g.from.min(g.to)));
        this
    }

    fn flag(&mut self, id: u64, flag: Flags) {
        self.flags.entry(id).or_default().insert(flag);
    }

    pub(crate) fn flags(&self, id: u64) -> Flags {
        self.flags.get(&id).copied().unwrap_or_default()
    }

    /// The worst flag of a task in words, e.g. `STALL 1.0s`.
    pub(crate) fn words(&self, id: u64) -> String {
        self.flags(id).words(self.worst_stall_ns.get(&id).copied())
    }

    /// Leaks of every kind: lost wakers, tasks alive at shutdown, growing sites.
    pub(crate) fn leaks(&self) -> usize {
        self.lost_wakers.len() + self.alive_at_shutdown.len() + self.growing.len()
    }
}

fn site_id(model: &Model, location: &str) -> Option<LocationId> {
    model
        .growth()
        .sites()
        .map(|(site, _)| site)
        .find(|&site| model.location(site) == location)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worse_flags_rank_higher_and_show_first() {
        let mut both = Flags::default();
        both.insert(Flags::CANCELLED);
        both.insert(Flags::STALL_NOW);
        assert_eq!(both.glyphs(), "Sc");
        assert_eq!(both.words(Some(1_000_000_000)), "STALL 1.00s");
        assert_eq!(Flags::LOST_WAKER.words(None), "LOST WAKER");
        assert_eq!(Flags::PANICKED.words(Some(5)), "PANIC");
        assert_eq!(Flags::default().words(None), "");
        assert!(both.rank() > Flags::LOST_WAKER.rank());
        assert!(Flags::LOST_WAKER.rank() > Flags::STALLED.rank());
        assert_eq!(Flags::default().rank(), 0);
    }
}
