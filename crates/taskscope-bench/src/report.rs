//! Turning runs into figures: one summary per (workload, mode), ratios to the `none` run of
//! the same repetition, the workload-specific figures, and the table and JSON renderings.

mod machine;
mod render;

pub(crate) use machine::{load_average, machine};
pub(crate) use render::{render, table};

use serde::{Deserialize, Serialize};

use crate::cli::Plan;
use crate::launch::{Run, Status};
use crate::mode::Mode;
use crate::stats::{Spread, percentile};
use crate::workload::Workload;

/// Everything the harness found, as `--json` prints it.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) command: String,
    pub(crate) machine: Machine,
    pub(crate) quick: bool,
    pub(crate) repetitions: u32,
    pub(crate) summaries: Vec<Summary>,
    pub(crate) runs: Vec<Run>,
}

/// Where the figures were taken.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) memory_gib: f64,
    pub(crate) kernel: String,
    /// 1-minute load average when the measurements started: above ~0.5 on an otherwise
    /// idle machine means someone else was using it.
    pub(crate) load_at_start: f64,
    pub(crate) load_at_end: f64,
}

/// One (workload, mode) over its repetitions.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) workload: Workload,
    pub(crate) mode: Mode,
    pub(crate) size: u64,
    pub(crate) unit: &'static str,
    /// Runs that finished.
    pub(crate) ok: usize,
    /// Runs that did not, and why ("timeout", "rss-cap", or the error).
    pub(crate) problems: Vec<String>,
    pub(crate) wall_ms: Option<Spread>,
    /// Wall time over the `none` run of the same repetition.
    pub(crate) wall_ratio: Option<Spread>,
    pub(crate) cpu_ms: Option<Spread>,
    pub(crate) cpu_ratio: Option<Spread>,
    pub(crate) peak_rss_mib: Option<Spread>,
    /// Peak RSS minus that of the `none` run of the same repetition.
    pub(crate) peak_rss_over_none_mib: Option<Spread>,
    /// CPU time per poll of the workload's tasks (`pingpong`, `spawn`, `timers`, `churn`).
    pub(crate) cpu_ns_per_poll: Option<Spread>,
    /// The same, minus `none`'s: what the instrumentation adds to each poll.
    pub(crate) added_cpu_ns_per_poll: Option<Spread>,
    /// What the instrumentation adds per spawned task, its poll included (`spawn`).
    pub(crate) added_cpu_ns_per_spawn: Option<Spread>,
    /// CPU time of the instrumentation's own threads per task spawned (`spawn`, `churn`):
    /// the aggregator's share, which runs beside the app rather than inside its polls.
    pub(crate) instrument_cpu_ns_per_task: Option<Spread>,
    /// Resident memory per idle task (`live`).
    pub(crate) live_kib_per_task: Option<Spread>,
    /// The same, minus `none`'s: the instrumentation's memory per task.
    pub(crate) added_kib_per_task: Option<Spread>,
    /// Steady-state CPU of the app's threads, % of one core (`serve`).
    pub(crate) app_cpu_pct: Option<Spread>,
    /// Steady-state CPU of the instrumentation's own threads, % of one core (`serve`).
    pub(crate) instrument_cpu_pct: Option<Spread>,
    /// Stall start to its first event at the client (`stall-latency`).
    pub(crate) stall_latency: Option<Latency>,
    /// With a watching client: tasks it was told about, and what the probe said it dropped.
    pub(crate) watched: Option<Watched>,
}

/// Latency percentiles, pooled over every stall of every repetition.
#[derive(Debug, Serialize)]
pub(crate) struct Latency {
    pub(crate) stalls: usize,
    /// Stalls the client heard nothing about.
    pub(crate) missed: usize,
    /// Stalls whose first event was not STARTED (seen only after the poll returned).
    pub(crate) late: usize,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
    pub(crate) max_ms: Option<f64>,
}

/// What a watching client saw (last repetition).
#[derive(Debug, Serialize)]
pub(crate) struct Watched {
    pub(crate) tasks_spawned_seen: u64,
    /// Short-lived tasks the probe counted by site instead of sending each.
    pub(crate) tasks_folded_seen: u64,
    pub(crate) tasks_ended_seen: u64,
    pub(crate) tasks_spawned_by_app: u64,
    pub(crate) drops: crate::watch::Drops,
    pub(crate) error: Option<String>,
    /// The probe disconnected the client before the workload ended.
    pub(crate) cut_off: bool,
}

/// Folds runs into summaries, in plan order.
pub(crate) fn summarize(plan: &Plan, runs: &[Run]) -> Vec<Summary> {
    let mut summaries = Vec::new();
    for &workload in &plan.workloads {
        for &mode in &plan.modes {
            let mine: Vec<&Run> = runs
                .iter()
                .filter(|r| r.workload == workload && r.mode == mode && r.rep > 0)
                .collect();
            if mine.is_empty() {
                continue;
            }
            summaries.push(summarize_one(workload, mode, &mine, runs));
        }
    }
    summaries
}

fn summarize_one(workload: Workload, mode: Mode, mine: &[&Run], all: &[Run]) -> Summary {
    let ok: Vec<&Run> = mine
        .iter()
        .copied()
        .filter(|r| r.status == Status::Ok && r.report.is_some())
        .collect();
    let baseline = |run: &Run| {
        all.iter().find(|b| {
            b.workload == run.workload
                && b.mode == Mode::None
                && b.rep == run.rep
                && b.status == Status::Ok
                && b.report.is_some()
        })
    };
    let pairs: Vec<(&Run, &Run)> = ok.iter().filter_map(|&r| Some((r, baseline(r)?))).collect();
    let report = |r: &Run| r.report.clone().unwrap_or_default();
    let wall_ms = |r: &Run| report(r).wall_ns as f64 / 1e6;
    let cpu_ns = |r: &Run| report(r).cpu_ns as f64;
    let cpu_ms = |r: &Run| cpu_ns(r) / 1e6;
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);

    let per_poll = ok.iter().all(|r| report(r).polls > 0);
    let ns_per_poll = |r: &Run| cpu_ns(r) / report(r).polls.max(1) as f64;
    let kib_per_task = |r: &Run| {
        report(r)
            .live
            .map(|l| l.rss_growth_bytes as f64 / 1024.0 / l.tasks.max(1) as f64)
    };
    let window_pct = |r: &Run, instrument: bool| {
        report(r).window.map(|w| {
            let cpu = if instrument {
                w.instrument_cpu_ns
            } else {
                w.app_cpu_ns
            };
            100.0 * cpu as f64 / w.window_ns.max(1) as f64
        })
    };
    let watched = mine.iter().rev().find_map(|r| {
        let watch = r.watch.as_ref()?;
        Some(Watched {
            tasks_spawned_seen: watch.tasks_spawned,
            tasks_folded_seen: watch.tasks_folded,
            tasks_ended_seen: watch.tasks_ended,
            tasks_spawned_by_app: r.report.as_ref().map_or(0, |c| c.spawned),
            drops: watch.drops,
            error: watch.error.clone(),
            cut_off: watch.cut_off,
        })
    });

    Summary {
        workload,
        mode,
        size: mine[0].size,
        unit: workload.unit(),
        ok: ok.len(),
        problems: mine
            .iter()
            .filter_map(|r| match &r.status {
                Status::Ok if r.report.is_some() => None,
                Status::Ok => Some("no result".to_owned()),
                Status::Timeout => Some("timeout".to_owned()),
                Status::RssCap => Some("rss-cap".to_owned()),
                Status::Failed(why) => Some(format!("failed: {why}")),
            })
            .collect(),
        wall_ms: Spread::of(ok.iter().map(|r| wall_ms(r))),
        wall_ratio: Spread::of(pairs.iter().map(|(r, b)| wall_ms(r) / wall_ms(b))),
        cpu_ms: Spread::of(ok.iter().map(|r| cpu_ms(r))),
        cpu_ratio: Spread::of(pairs.iter().map(|(r, b)| cpu_ms(r) / cpu_ms(b))),
        peak_rss_mib: Spread::of(ok.iter().map(|r| mib(r.peak_rss_bytes))),
        peak_rss_over_none_mib: Spread::of(
            pairs
                .iter()
                .map(|(r, b)| mib(r.peak_rss_bytes) - mib(b.peak_rss_bytes)),
        ),
        cpu_ns_per_poll: per_poll
            .then(|| Spread::of(ok.iter().map(|r| ns_per_poll(r))))
            .flatten(),
        added_cpu_ns_per_poll: per_poll
            .then(|| {
                Spread::of(
                    pairs
                        .iter()
                        .map(|(r, b)| (cpu_ns(r) - cpu_ns(b)) / report(b).polls.max(1) as f64),
                )
            })
            .flatten(),
        added_cpu_ns_per_spawn: (workload == Workload::Spawn)
            .then(|| {
                Spread::of(
                    pairs
                        .iter()
                        .map(|(r, b)| (cpu_ns(r) - cpu_ns(b)) / r.size as f64),
                )
            })
            .flatten(),
        instrument_cpu_ns_per_task: (matches!(workload, Workload::Spawn | Workload::Churn)
            && mode != Mode::None)
            .then(|| {
                Spread::of(
                    ok.iter()
                        .map(|r| report(r).instrument_cpu_ns as f64 / r.size as f64),
                )
            })
            .flatten(),
        live_kib_per_task: Spread::of(ok.iter().filter_map(|r| kib_per_task(r))),
        added_kib_per_task: Spread::of(
            pairs
                .iter()
                .filter_map(|(r, b)| Some(kib_per_task(r)? - kib_per_task(b)?)),
        ),
        app_cpu_pct: Spread::of(ok.iter().filter_map(|r| window_pct(r, false))),
        instrument_cpu_pct: Spread::of(ok.iter().filter_map(|r| window_pct(r, true))),
        stall_latency: (workload == Workload::StallLatency)
            .then(|| stall_latency(&ok))
            .flatten(),
        watched,
    }
}

/// Pairs each stall the child made with the first event the client got about it (by the
/// poll's start time: the probe's and the child's clocks agree to microseconds here).
fn stall_latency(runs: &[&Run]) -> Option<Latency> {
    /// A probe event this far from the child's recorded start is about another poll.
    const SAME_POLL_NS: u64 = 20_000_000;
    let mut latencies = Vec::new();
    let (mut stalls, mut missed, mut late) = (0, 0, 0);
    for run in runs {
        let (Some(report), Some(watch)) = (&run.report, &run.watch) else {
            continue;
        };
        for &start in &report.stall_starts_unix_ns {
            stalls += 1;
            let seen = watch
                .stalls
                .iter()
                .find(|s| s.poll_started_unix_ns.abs_diff(start) < SAME_POLL_NS);
            match seen {
                Some(seen) => {
                    late += usize::from(!seen.started);
                    latencies.push(seen.arrived_unix_ns.saturating_sub(start) as f64 / 1e6);
                }
                None => missed += 1,
            }
        }
    }
    (stalls > 0).then(|| Latency {
        stalls,
        missed,
        late,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: percentile(&latencies, 100.0),
    })
}
