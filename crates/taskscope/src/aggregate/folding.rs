//! Short-lived tasks counted by spawn site instead of one by one.
//!
//! An app that spawns hundreds of thousands of tasks a second, each over within
//! microseconds, would have every update carry a `TaskSpawned` and a `TaskEnded` for
//! each: about 10 MB per publish, cloned for every consumer and queued for each watcher,
//! in the app's memory. Nobody reads them one by one, and nothing a finding needs is in
//! them: such a task completed, without a panic, a cancellation or a long poll. So in each
//! update the first [`SENT_PER_SITE`] of a site go one by one (a client still sees what
//! they look like) and the rest are added to their site's tally (`Update.folded`), which
//! goes out whole whenever it grew.

use std::collections::HashMap;

use taskscope_api::v1;

use crate::tasks::cell::{Kind, TaskCell};

/// Tasks of one spawn site sent one by one in each update before the rest are folded.
pub(crate) const SENT_PER_SITE: u32 = 64;
/// Ids of folded tasks per message: a site that folded more since the last update comes in
/// several messages, each far below the size of an update.
const IDS_PER_MESSAGE: usize = 16 * 1024;

/// A spawn site, as the tally is kept by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Site {
    file: &'static str,
    line: u32,
    column: u32,
}

/// The tallies of folded tasks, since the probe started.
#[derive(Default)]
pub(crate) struct Folding {
    /// Tasks sent one by one in the update being built, per site.
    sent: HashMap<Site, u32>,
    /// Every site's tally since the probe started (without ids), and the ids of the tasks
    /// it grew by since the last update.
    totals: HashMap<Site, (v1::FoldedTasks, Vec<u64>)>,
}

impl Folding {
    /// `cell`'s task, just taken in and already over, is folded into its site's tally
    /// (`true`), or is to be sent one by one (`false`). `threshold_ns`: the stall
    /// threshold, which no folded task's poll may have reached.
    pub(crate) fn fold(&mut self, cell: &TaskCell, threshold_ns: u64) -> bool {
        let (polls, busy_ns, max_poll_ns) = cell.poll_totals();
        let id = &cell.identity;
        let plain_completion = cell
            .end()
            .is_some_and(|end| end.outcome == v1::Outcome::Completed && end.panic.is_none());
        if !plain_completion || id.kind != Kind::Task || id.name.is_some() {
            return false;
        }
        if max_poll_ns >= threshold_ns {
            return false;
        }
        let site = Site {
            file: id.file,
            line: id.line,
            column: id.column,
        };
        let sent = self.sent.entry(site).or_insert(0);
        if *sent < SENT_PER_SITE {
            *sent += 1;
            return false;
        }
        let (folded, ids) = self.totals.entry(site).or_insert_with(|| {
            let folded = v1::FoldedTasks {
                location: Some(v1::Location {
                    file: site.file.to_owned(),
                    line: site.line,
                    column: site.column,
                }),
                kind: v1::TaskKind::Task as i32,
                ..Default::default()
            };
            (folded, Vec::new())
        });
        ids.push(id.id);
        folded.tasks += 1;
        folded.polls += polls;
        folded.busy_ns += busy_ns;
        folded.max_poll_ns = folded.max_poll_ns.max(max_poll_ns);
        true
    }

    /// The tallies that grew since the last call, whole (a client replaces its own, so an
    /// update seen twice, in a snapshot and in the delta after it, counts nothing twice),
    /// with the ids they grew by; the count of tasks sent one by one starts again.
    pub(crate) fn take_changed(&mut self) -> Vec<v1::FoldedTasks> {
        self.sent.clear();
        let mut changed = Vec::new();
        for (folded, ids) in self.totals.values_mut() {
            for chunk in ids.chunks(IDS_PER_MESSAGE) {
                changed.push(v1::FoldedTasks {
                    ids: chunk.to_vec(),
                    ..folded.clone()
                });
            }
            ids.clear();
        }
        changed
    }

    /// Every site's tally, for a snapshot.
    pub(crate) fn totals(&self) -> impl Iterator<Item = &v1::FoldedTasks> {
        self.totals.values().map(|(folded, _)| folded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::cell::Identity;

    fn ended(id: u64, line: u32, end: v1::Outcome) -> TaskCell {
        let cell = TaskCell::new(Identity {
            line,
            ..Identity::for_test(id)
        });
        let mut outcome = crate::tasks::outcome::ended_at_shutdown();
        outcome.outcome = end;
        cell.set_end(outcome);
        cell
    }

    #[test]
    fn a_sites_first_tasks_in_an_update_go_one_by_one_and_the_rest_are_tallied() {
        let mut folding = Folding::default();
        let threshold = 100_000_000;
        let sent = (0..SENT_PER_SITE as u64 + 10)
            .filter(|&id| !folding.fold(&ended(id, 7, v1::Outcome::Completed), threshold))
            .count();
        assert_eq!(sent, SENT_PER_SITE as usize);
        // Another site has a quota of its own.
        assert!(!folding.fold(&ended(1_000, 8, v1::Outcome::Completed), threshold));
        let changed = folding.take_changed();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].tasks, 10);
        assert_eq!(changed[0].location.as_ref().unwrap().line, 7);
        let first_folded = u64::from(SENT_PER_SITE);
        assert_eq!(
            changed[0].ids,
            (first_folded..first_folded + 10).collect::<Vec<_>>(),
            "the ids it grew by, for naming them on timelines"
        );
        // The next update starts a new quota.
        assert!(!folding.fold(&ended(2_000, 7, v1::Outcome::Completed), threshold));
        assert!(folding.take_changed().is_empty());
        // A tally goes out whole: its total so far, not what it grew by.
        for id in 3_000..3_000 + u64::from(SENT_PER_SITE) + 5 {
            folding.fold(&ended(id, 7, v1::Outcome::Completed), threshold);
        }
        let changed = folding.take_changed();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].tasks, 15);
        assert_eq!(changed[0].ids.len(), 5);
        assert_eq!(folding.totals().map(|f| f.tasks).sum::<u64>(), 15);
        assert!(
            folding.totals().all(|f| f.ids.is_empty()),
            "a snapshot carries no ids"
        );
    }

    #[test]
    fn a_site_that_folded_many_ids_comes_in_messages_of_bounded_size() {
        let mut folding = Folding::default();
        let many = u64::from(SENT_PER_SITE) + IDS_PER_MESSAGE as u64 + 1;
        for id in 0..many {
            folding.fold(&ended(id, 7, v1::Outcome::Completed), 100_000_000);
        }
        let changed = folding.take_changed();
        let sizes: Vec<usize> = changed.iter().map(|f| f.ids.len()).collect();
        assert_eq!(sizes, [IDS_PER_MESSAGE, 1]);
        assert!(
            changed
                .iter()
                .all(|f| f.tasks == IDS_PER_MESSAGE as u64 + 1)
        );
    }

    #[test]
    fn tasks_a_finding_or_their_details_need_are_never_folded() {
        let mut folding = Folding::default();
        let threshold = 100_000_000;
        for id in 0..u64::from(SENT_PER_SITE) {
            assert!(!folding.fold(&ended(id, 7, v1::Outcome::Completed), threshold));
        }
        // The quota is spent: a plain completion is folded now, nothing else.
        assert!(folding.fold(&ended(100, 7, v1::Outcome::Completed), threshold));
        assert!(!folding.fold(&ended(101, 7, v1::Outcome::Cancelled), threshold));
        assert!(!folding.fold(&ended(102, 7, v1::Outcome::Panicked), threshold));
        let named = TaskCell::new(Identity {
            line: 7,
            name: Some("named".into()),
            ..Identity::for_test(103)
        });
        let mut end = crate::tasks::outcome::ended_at_shutdown();
        end.outcome = v1::Outcome::Completed;
        named.set_end(end);
        assert!(!folding.fold(&named, threshold));
        // A task whose poll reached the threshold may be a stall's: kept whole.
        let long = ended(104, 7, v1::Outcome::Completed);
        long.poll_ended(0, threshold);
        assert!(!folding.fold(&long, threshold));
        let live = TaskCell::new(Identity {
            line: 7,
            ..Identity::for_test(105)
        });
        assert!(!folding.fold(&live, threshold));
        assert_eq!(folding.take_changed()[0].tasks, 1);
    }
}
