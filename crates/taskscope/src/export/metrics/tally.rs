//! The numbers behind the metrics, kept by the aggregator on the probe's thread.
//!
//! Counters are fed by what the aggregator takes in anyway (a task taken in, a task's end,
//! a stall), never by a poll. Everything read from live tasks (tasks alive, lost wakers,
//! poll durations) is gathered at most once per [`REFRESH_NS`], at the publish cadence,
//! and the result is handed to the endpoint as one immutable [`Exposition`].

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use taskscope_api::{histogram, v1};

use super::exposition::{Board, Exposition};
use super::sites::{self, Change, OTHER, SeriesId, Site, Sites};
use crate::tasks::cell::{Kind, TaskCell};
use crate::tasks::task_table::IdHasher;

/// The numbers are gathered at most this often: monitoring systems scrape every few
/// seconds, and gathering reads every live task.
pub(crate) const REFRESH_NS: u64 = 1_000_000_000;
/// A task idle this long with no waker left is a lost waker (as `taskscope check` says).
const LOST_WAKER_GRACE_NS: u64 = 1_000_000_000;

/// Upper bounds (ns) of the exported poll-duration buckets: edges of the probe's own
/// histogram (`taskscope_api::histogram`), so that every poll falls in one exactly.
pub(crate) const POLL_BOUNDS_NS: [u64; 6] = [
    16_384,        // 2^14 ns, ~16 µs
    98_304,        // 1.5 * 2^16 ns, ~98 µs
    1_048_576,     // 2^20 ns, ~1 ms
    12_582_912,    // 1.5 * 2^23 ns, ~12.6 ms
    100_663_296,   // 1.5 * 2^26 ns, ~101 ms
    1_073_741_824, // 2^30 ns, ~1.07 s
];
/// Upper bounds (s) of the stall-duration buckets.
pub(crate) const STALL_BOUNDS_S: [f64; 9] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// How tasks end, as the `outcome` label says it.
pub(crate) const OUTCOMES: [&str; 4] = ["completed", "cancelled", "panicked", "alive_at_shutdown"];

/// Counts per bucket (the last one unbounded) and the sum of the values, in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Buckets {
    pub(crate) counts: Vec<u64>,
    pub(crate) sum: f64,
}

impl Buckets {
    fn new(bounds: usize) -> Self {
        Self {
            counts: vec![0; bounds + 1],
            sum: 0.0,
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The exported poll buckets of polls counted in the probe's own buckets.
    fn of_polls(polls: &Polls) -> Self {
        let mut buckets = Self::new(POLL_BOUNDS_NS.len());
        for (index, &count) in polls.counts.iter().enumerate() {
            let (_, high) = histogram::bucket_bounds(index);
            let bucket = POLL_BOUNDS_NS
                .iter()
                .position(|&bound| high <= bound)
                .unwrap_or(POLL_BOUNDS_NS.len());
            buckets.counts[bucket] += count;
        }
        buckets.sum = polls.busy_ns as f64 / 1e9;
        buckets
    }

    /// Raises every count (and the sum) to at least `other`'s: what an exported counter
    /// has shown must never go down.
    fn raise_to(&mut self, other: &Buckets) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = (*mine).max(*theirs);
        }
        self.sum = self.sum.max(other.sum);
    }
}

/// Polls in the probe's own buckets (`taskscope_api::histogram`) and their total time:
/// adding a task's is a plain sum, its mapping to the exported buckets waits for the
/// refresh.
#[derive(Debug, Clone)]
struct Polls {
    counts: [u64; histogram::BUCKETS],
    busy_ns: u64,
}

impl Polls {
    const NONE: Polls = Polls {
        counts: [0; histogram::BUCKETS],
        busy_ns: 0,
    };

    fn add(&mut self, cell: &TaskCell) {
        self.busy_ns += cell.add_polls_to(&mut self.counts);
    }
}

/// One exported series: a site with a slot, or `other`.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// `file:line:col`, or `other`.
    pub(crate) site: Arc<str>,
    pub(crate) spawned: u64,
    /// By [`OUTCOMES`].
    pub(crate) ended: [u64; 4],
    pub(crate) stalls: u64,
    pub(crate) stall_durations: Buckets,
    /// Polls of the tasks that have ended.
    ended_polls: Polls,
    /// Polls of ended and live tasks, as last published.
    pub(crate) polls: Buckets,
    pub(crate) live: u64,
    pub(crate) lost_wakers: u64,
    pub(crate) stalls_running: u64,
}

impl Series {
    fn of_site(site: Site) -> Self {
        Self::new(sites::label(site).into())
    }

    fn new(site: Arc<str>) -> Self {
        Self {
            site,
            spawned: 0,
            ended: [0; 4],
            stalls: 0,
            stall_durations: Buckets::new(STALL_BOUNDS_S.len()),
            ended_polls: Polls::NONE,
            polls: Buckets::new(POLL_BOUNDS_NS.len()),
            live: 0,
            lost_wakers: 0,
            stalls_running: 0,
        }
    }
}

/// The aggregator's side of the metrics.
pub(crate) struct Tally {
    sites: Sites,
    /// By [`SeriesId`]; `None` for a slot nobody holds.
    series: Vec<Option<Series>>,
    /// The series of every task taken in and not yet ended.
    tasks: HashMap<u64, SeriesId, BuildHasherDefault<IdHasher>>,
    waker_tracking: bool,
    publish_interval_ns: u64,
    threshold_s: f64,
    last_refresh_ns: Option<u64>,
    last_tick_ns: Option<u64>,
    /// The most the publish cadence ran late since the last refresh.
    lag_ns: u64,
    board: Arc<Board>,
}

impl Tally {
    pub(crate) fn new(config: &crate::base::config::Config, board: Arc<Board>) -> Self {
        let mut series = vec![None; config.metrics.max_sites + 1];
        series[OTHER] = Some(Series::new("other".into()));
        Self {
            sites: Sites::new(config.metrics.max_sites),
            series,
            tasks: HashMap::default(),
            waker_tracking: config.waker_tracking(),
            publish_interval_ns: config.publish_interval.as_nanos() as u64,
            threshold_s: config.stall_threshold.as_secs_f64(),
            last_refresh_ns: None,
            last_tick_ns: None,
            lag_ns: 0,
            board,
        }
    }

    fn series_mut(&mut self, id: SeriesId) -> &mut Series {
        // A task's series lives as long as the task: `other` is never used in its stead.
        let id = if self.series[id].is_some() { id } else { OTHER };
        self.series[id].as_mut().expect("`other` always exists")
    }

    /// A task was taken in.
    pub(crate) fn spawned(&mut self, cell: &TaskCell, now_ns: u64) {
        let id = cell.identity.id;
        if self.tasks.contains_key(&id) {
            return;
        }
        let site = sites::of(&cell.identity);
        let series = self.sites.series_of_spawn(site, now_ns);
        if self.series[series].is_none() {
            self.series[series] = Some(Series::of_site(site));
        }
        self.tasks.insert(id, series);
        self.series_mut(series).spawned += 1;
    }

    /// A task taken in has ended.
    pub(crate) fn ended(&mut self, cell: &TaskCell) {
        let Some(end) = cell.end() else { return };
        let Some(series) = self.tasks.remove(&cell.identity.id) else {
            return;
        };
        let outcome = match end.outcome {
            v1::Outcome::Completed => Some(0),
            v1::Outcome::Cancelled => Some(1),
            v1::Outcome::Panicked => Some(2),
            v1::Outcome::CancelledAtShutdown => Some(3),
            v1::Outcome::Unspecified => None,
        };
        let series = self.series_mut(series);
        if let Some(outcome) = outcome {
            series.ended[outcome] += 1;
        }
        series.ended_polls.add(cell);
    }

    /// The series a task is counted in (`other` once it has ended).
    fn series_of_task(&self, task: u64) -> SeriesId {
        self.tasks.get(&task).copied().unwrap_or(OTHER)
    }

    /// A stall was first seen (still running, or just ended).
    pub(crate) fn stall_started(&mut self, task: u64) {
        let series = self.series_of_task(task);
        self.series_mut(series).stalls += 1;
    }

    /// A stall ended after `duration_ns`.
    pub(crate) fn stall_ended(&mut self, task: u64, duration_ns: u64) {
        let seconds = duration_ns as f64 / 1e9;
        let bucket = STALL_BOUNDS_S
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(STALL_BOUNDS_S.len());
        let series = self.series_of_task(task);
        let durations = &mut self.series_mut(series).stall_durations;
        durations.counts[bucket] += 1;
        durations.sum += seconds;
    }

    /// Called at every publish: notes how late it came, and refreshes the published
    /// numbers when [`REFRESH_NS`] has passed.
    pub(crate) fn tick<'a>(
        &mut self,
        now_ns: u64,
        live: impl Iterator<Item = &'a Arc<TaskCell>>,
        stalled_tasks: impl Iterator<Item = u64>,
        drops: v1::Drops,
    ) {
        if let Some(last) = self.last_tick_ns.replace(now_ns) {
            let late = now_ns.saturating_sub(last + self.publish_interval_ns);
            self.lag_ns = self.lag_ns.max(late);
        }
        if self
            .last_refresh_ns
            .is_some_and(|last| now_ns.saturating_sub(last) < REFRESH_NS)
        {
            return;
        }
        self.last_refresh_ns = Some(now_ns);
        self.rebalance(now_ns);
        self.gather(now_ns, live, stalled_tasks);
        let exposition = Exposition {
            series: self.series.iter().flatten().cloned().collect(),
            drops,
            lag_s: std::mem::take(&mut self.lag_ns) as f64 / 1e9,
            threshold_s: self.threshold_s,
            waker_tracking: self.waker_tracking,
        };
        self.board.publish(exposition);
    }

    /// Hands free slots to the busiest sites without one.
    fn rebalance(&mut self, now_ns: u64) {
        let series = &self.series;
        let is_empty = |id: SeriesId| series[id].as_ref().is_none_or(|s| s.live == 0);
        for change in self.sites.rebalance(now_ns, is_empty) {
            match change {
                Change::Given { site, series } => self.series[series] = Some(Series::of_site(site)),
                Change::Taken { series } => self.series[series] = None,
            }
        }
    }

    /// Reads the live tasks: how many, how many lost their waker, and their polls.
    fn gather<'a>(
        &mut self,
        now_ns: u64,
        live: impl Iterator<Item = &'a Arc<TaskCell>>,
        stalled_tasks: impl Iterator<Item = u64>,
    ) {
        let mut polls: Vec<Option<Polls>> = self
            .series
            .iter_mut()
            .map(|series| {
                let series = series.as_mut()?;
                series.live = 0;
                series.lost_wakers = 0;
                series.stalls_running = 0;
                Some(series.ended_polls.clone())
            })
            .collect();
        for cell in live {
            let id = self.series_of_task(cell.identity.id);
            let lost = self.waker_tracking && is_lost_waker(cell, now_ns);
            let series = self.series_mut(id);
            series.live += 1;
            series.lost_wakers += u64::from(lost);
            let id = if polls[id].is_some() { id } else { OTHER };
            if let Some(polls) = polls[id].as_mut() {
                polls.add(cell);
            }
        }
        for task in stalled_tasks {
            let series = self.series_of_task(task);
            self.series_mut(series).stalls_running += 1;
        }
        for (series, polls) in self.series.iter_mut().zip(polls) {
            if let (Some(series), Some(polls)) = (series.as_mut(), polls) {
                series.polls.raise_to(&Buckets::of_polls(&polls));
            }
        }
    }
}

/// Idle, polled at least once, not one waker left, for a while: nothing holds a way to
/// wake it (the rule `taskscope check` reports a lost waker by).
fn is_lost_waker(cell: &TaskCell, now_ns: u64) -> bool {
    if !matches!(cell.identity.kind, Kind::Task | Kind::Local) {
        return false;
    }
    let stats = cell.stats(false);
    let lost = stats.lost_before_dump
        || (stats.wakers == 0 && !stats.wakers_unsure && stats.state == v1::TaskState::Idle as i32);
    stats.polls > 0 && lost && now_ns.saturating_sub(stats.last_poll_end_ns) >= LOST_WAKER_GRACE_NS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_poll_of_the_probe_histogram_lands_in_an_exported_bucket_that_holds_it() {
        for index in 0..histogram::BUCKETS {
            let mut polls = Polls::NONE;
            polls.counts[index] = 1;
            let buckets = Buckets::of_polls(&polls);
            let exported = buckets.counts.iter().position(|&c| c == 1).unwrap();
            let (low, high) = histogram::bucket_bounds(index);
            if exported < POLL_BOUNDS_NS.len() {
                assert!(high <= POLL_BOUNDS_NS[exported], "bucket {index}");
            }
            if exported > 0 {
                assert!(low >= POLL_BOUNDS_NS[exported - 1], "bucket {index}");
            }
        }
    }

    use crate::tasks::cell::{End, Identity, WakeFrom, WakerOp};

    fn cell_at(id: u64, line: u32) -> Arc<TaskCell> {
        let mut identity = Identity::for_test(id);
        identity.line = line;
        Arc::new(TaskCell::new(identity))
    }

    fn end(cell: &TaskCell, outcome: v1::Outcome) {
        cell.set_end(End {
            at_ns: 1,
            outcome,
            thread: 1,
            panic: None,
        });
    }

    #[test]
    fn a_task_polled_then_left_without_a_waker_is_a_lost_waker_after_the_grace() {
        let cell = cell_at(1, 1);
        cell.waker_op(WakerOp::Clone, 10, WakeFrom::Elsewhere);
        cell.poll_started(100, 1, u64::MAX, true);
        cell.poll_ended(100, 200);
        assert!(
            !is_lost_waker(&cell, 200 + 2 * LOST_WAKER_GRACE_NS),
            "a waker is held"
        );
        cell.waker_op(WakerOp::Drop, 300, WakeFrom::Elsewhere);
        assert!(!is_lost_waker(&cell, 300), "within the grace");
        assert!(is_lost_waker(&cell, 200 + LOST_WAKER_GRACE_NS));
    }

    #[test]
    fn tasks_stalls_and_ends_are_counted_under_their_series() {
        let board = Arc::new(Board::default());
        let mut config = crate::base::config::Config::default();
        config.metrics.max_sites = 1;
        let mut tally = Tally::new(&config, board.clone());
        let (mine, others) = (cell_at(1, 10), cell_at(2, 20));
        tally.spawned(&mine, 0);
        tally.spawned(&others, 0);
        tally.stall_started(1);
        tally.stall_ended(1, 300_000_000);
        end(&others, v1::Outcome::Panicked);
        tally.ended(&others);
        tally.tick(
            0,
            [&mine].into_iter(),
            [1].into_iter(),
            v1::Drops::default(),
        );
        let text = board.text(super::super::exposition::Format::Prometheus);
        let text = std::str::from_utf8(&text).unwrap();
        for line in [
            "taskscope_tasks_live{site=\"f.rs:10:1\"} 1",
            "taskscope_tasks_live{site=\"other\"} 0",
            "taskscope_tasks_spawned_total{site=\"other\"} 1",
            "taskscope_stalls_total{site=\"f.rs:10:1\"} 1",
            "taskscope_stalls_running{site=\"f.rs:10:1\"} 1",
            "taskscope_stall_duration_seconds_bucket{site=\"f.rs:10:1\",le=\"0.25\"} 0",
            "taskscope_stall_duration_seconds_bucket{site=\"f.rs:10:1\",le=\"0.5\"} 1",
            "taskscope_tasks_ended_total{site=\"other\",outcome=\"panicked\"} 1",
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
        assert!(
            !text.contains("taskscope_lost_wakers"),
            "without waker tracking"
        );
    }

    #[test]
    fn published_counts_never_go_down() {
        let mut shown = Buckets::new(2);
        shown.raise_to(&Buckets {
            counts: vec![3, 1, 0],
            sum: 2.0,
        });
        shown.raise_to(&Buckets {
            counts: vec![2, 1, 1],
            sum: 1.5,
        });
        assert_eq!(shown.counts, [3, 1, 1]);
        assert_eq!(shown.sum, 2.0);
    }
}
