//! Which spawn sites get series of their own: at most `max_sites`, the most active ones,
//! and every other site summed into `site="other"`.
//!
//! A monitoring system stores one series per label value, for weeks: an app that spawns
//! from thousands of places (generated code, one spawn per plugin) must not become
//! thousands of series per metric. While slots are free, a site takes one with its first
//! spawn; once all are taken, a slot freed by an idle site goes to the site without one
//! that spawned the most since the last round; the rest share one series.
//!
//! Counters must only ever go up. So a task is counted, for its whole life, in the series
//! it was given when it was taken in; a site that wins a slot counts its *new* tasks there
//! from then on, while what it did before stays in `other`. A slot is given back only by a
//! site with no task left alive and no spawn for [`IDLE_SLOT_NS`], and only when another
//! site wants it: its series then simply ends (a monitoring system sees it go stale).

use std::collections::HashMap;

/// A spawn site: `file`, `line`, `column` of the spawn call.
pub(crate) type Site = (&'static str, u32, u32);

/// The spawn site of a task.
pub(crate) fn of(identity: &crate::tasks::cell::Identity) -> Site {
    (identity.file, identity.line, identity.column)
}

/// `file:line:column`, as the dashboard and `taskscope check` name a site.
pub(crate) fn label((file, line, column): Site) -> String {
    format!("{file}:{line}:{column}")
}

/// The index of a series; [`OTHER`] is the one every site without a slot shares.
pub(crate) type SeriesId = usize;

/// The series of the sites without a slot.
pub(crate) const OTHER: SeriesId = 0;

/// How long a site must have spawned nothing (and have no task alive) before its slot may
/// go to a busier site.
pub(crate) const IDLE_SLOT_NS: u64 = 10 * 60 * 1_000_000_000;

/// A site holding a slot.
struct Slot {
    series: SeriesId,
    last_spawn_ns: u64,
}

/// What [`Sites::rebalance`] changed, for the series to follow.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// `site` has the series `series` from now on.
    Given { site: Site, series: SeriesId },
    /// The series `series` ends (its site spawned nothing for long, and had no task left).
    Taken { series: SeriesId },
}

/// The slots and the activity of the sites waiting for one.
pub(crate) struct Sites {
    slots: HashMap<Site, Slot>,
    /// Series ids not in use, from `1..=max_sites`.
    free: Vec<SeriesId>,
    /// Spawns since the last rebalance, by site without a slot: bounded by the number of
    /// spawn sites in the program's code.
    waiting: HashMap<Site, u64>,
}

impl Sites {
    pub(crate) fn new(max_sites: usize) -> Self {
        Self {
            slots: HashMap::new(),
            free: (1..=max_sites).rev().collect(),
            waiting: HashMap::new(),
        }
    }

    /// The series a task spawned at `site` now is counted in: its site's, taking a free
    /// slot if it has none, or [`OTHER`].
    pub(crate) fn series_of_spawn(&mut self, site: Site, now_ns: u64) -> SeriesId {
        if let Some(slot) = self.slots.get_mut(&site) {
            slot.last_spawn_ns = now_ns;
            return slot.series;
        }
        match self.free.pop() {
            Some(series) => {
                self.slots.insert(
                    site,
                    Slot {
                        series,
                        last_spawn_ns: now_ns,
                    },
                );
                series
            }
            None => {
                *self.waiting.entry(site).or_default() += 1;
                OTHER
            }
        }
    }

    /// Gives free slots (and slots of long-idle sites; `is_empty` says whether a series
    /// has no task alive) to the most active waiting sites, and starts a new round.
    pub(crate) fn rebalance(
        &mut self,
        now_ns: u64,
        is_empty: impl Fn(SeriesId) -> bool,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        if self.waiting.is_empty() {
            return changes;
        }
        let mut waiting: Vec<(Site, u64)> = self.waiting.drain().collect();
        // Busiest first; ties in a stable order, so that runs of one program agree.
        waiting.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        if self.free.len() < waiting.len() {
            self.take_idle(now_ns, &is_empty, &mut changes);
        }
        for (site, _) in waiting {
            let Some(series) = self.free.pop() else { break };
            self.slots.insert(
                site,
                Slot {
                    series,
                    last_spawn_ns: now_ns,
                },
            );
            changes.push(Change::Given { site, series });
        }
        changes
    }

    /// Frees the slots of sites idle for [`IDLE_SLOT_NS`] with no task alive.
    fn take_idle(
        &mut self,
        now_ns: u64,
        is_empty: &impl Fn(SeriesId) -> bool,
        changes: &mut Vec<Change>,
    ) {
        self.slots.retain(|_, slot| {
            let idle = now_ns.saturating_sub(slot.last_spawn_ns) >= IDLE_SLOT_NS;
            if idle && is_empty(slot.series) {
                self.free.push(slot.series);
                changes.push(Change::Taken {
                    series: slot.series,
                });
                return false;
            }
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(n: u32) -> Site {
        ("src/generated.rs", n, 5)
    }

    #[test]
    fn ten_thousand_sites_share_at_most_max_sites_series_and_other() {
        let mut sites = Sites::new(50);
        let mut used = std::collections::HashSet::new();
        for round in 0..5u64 {
            for n in 0..10_000 {
                used.insert(sites.series_of_spawn(site(n), round));
            }
            sites.rebalance(round, |_| true);
        }
        assert!(used.len() <= 51, "{} series", used.len());
        assert!(used.contains(&OTHER));
        assert!(used.iter().all(|&series| series <= 50));
    }

    #[test]
    fn sites_take_free_slots_with_their_first_spawn() {
        let mut sites = Sites::new(2);
        let first = sites.series_of_spawn(site(1), 0);
        let second = sites.series_of_spawn(site(2), 0);
        assert!(first != OTHER && second != OTHER && first != second);
        assert_eq!(sites.series_of_spawn(site(3), 0), OTHER);
        assert_eq!(sites.series_of_spawn(site(1), 0), first);
    }

    #[test]
    fn slots_freed_by_idle_sites_go_to_the_busiest_sites_without_one() {
        let mut sites = Sites::new(2);
        sites.series_of_spawn(site(1000), 0);
        sites.series_of_spawn(site(1001), 0);
        for n in 0..100 {
            sites.series_of_spawn(site(n), 0);
        }
        for _ in 0..10 {
            sites.series_of_spawn(site(42), 0);
            sites.series_of_spawn(site(7), 0);
        }
        let changes = sites.rebalance(IDLE_SLOT_NS, |_| true);
        let given: Vec<Site> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Given { site, .. } => Some(*site),
                Change::Taken { .. } => None,
            })
            .collect();
        assert_eq!(given, [site(7), site(42)]);
        assert_ne!(sites.series_of_spawn(site(42), IDLE_SLOT_NS), OTHER);
        assert_eq!(sites.series_of_spawn(site(3), IDLE_SLOT_NS), OTHER);
        assert_eq!(sites.series_of_spawn(site(1000), IDLE_SLOT_NS), OTHER);
    }

    #[test]
    fn a_slot_goes_to_another_site_only_after_its_site_has_been_idle_and_empty() {
        let mut sites = Sites::new(1);
        assert_eq!(sites.series_of_spawn(site(1), 0), 1);
        sites.series_of_spawn(site(2), 1);
        // Idle long enough, but a task of site 1 is still alive.
        assert!(sites.rebalance(IDLE_SLOT_NS, |_| false).is_empty());
        sites.series_of_spawn(site(2), IDLE_SLOT_NS);
        let changes = sites.rebalance(IDLE_SLOT_NS, |_| true);
        assert_eq!(
            changes,
            [
                Change::Taken { series: 1 },
                Change::Given {
                    site: site(2),
                    series: 1
                }
            ]
        );
        assert_eq!(sites.series_of_spawn(site(1), IDLE_SLOT_NS), OTHER);
    }
}
