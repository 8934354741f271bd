//! Turning runs into figures: one summary per (workload, mode), ratios to the `none` run of
//! the same repetition, the workload-specific figures, and the table and JSON renderings.

use serde::Serialize;

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
#[derive(Debug, Serialize)]
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

/// The machine, from `/proc` and `uname`.
pub(crate) fn machine(load_at_start: f64) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_owned(), |(_, name)| name.trim().to_owned());
    let memory_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("unknown".to_owned(), |k| k.trim().to_owned());
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        kernel,
        load_at_start,
        load_at_end: load_average(),
    }
}

/// The 1-minute load average.
pub(crate) fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The report as a text table, with the workload-specific figures as notes.
pub(crate) fn render(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.machine;
    out.push_str(&format!(
        "machine: {} ({} cores, {} GiB, Linux {}), load {:.2} -> {:.2}\n",
        m.cpu, m.cores, m.memory_gib, m.kernel, m.load_at_start, m.load_at_end
    ));
    out.push_str(&format!(
        "command: taskscope-bench {}\nrepetitions: {}{}\n\n",
        report.command,
        report.repetitions,
        if report.quick {
            " (--quick: tiny sizes, timings mean nothing)"
        } else {
            ""
        }
    ));
    let header = [
        "workload",
        "size",
        "mode",
        "wall ms",
        "x none",
        "CPU ms",
        "x none",
        "peak RSS MiB",
        "notes",
    ];
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    for s in &report.summaries {
        rows.push(vec![
            s.workload.to_string(),
            s.size.to_string(),
            s.mode.to_string(),
            spread_text(s.wall_ms, 1),
            ratio_text(s.wall_ratio),
            spread_text(s.cpu_ms, 0),
            ratio_text(s.cpu_ratio),
            spread_text(s.peak_rss_mib, 0),
            notes(s),
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str(
        "\nwall and CPU: the workload's own, measured in the child (CPU: every thread, the \
         instrumentation's included); peak RSS: the child's (wait4).\nmedian (min-max) over repetitions; ratios are taken against `none` \
         repetition by repetition.\n",
    );
    out
}

fn notes(s: &Summary) -> String {
    let mut notes = Vec::new();
    if !s.problems.is_empty() {
        notes.push(s.problems.join(", "));
    }
    if let Some(per_poll) = s.cpu_ns_per_poll {
        let added = s
            .added_cpu_ns_per_poll
            .filter(|_| s.mode != Mode::None)
            .map_or(String::new(), |a| format!(" (+{:.0})", a.median));
        notes.push(format!("{:.0}{added} ns CPU/poll", per_poll.median));
    }
    if let Some(spawn) = s.added_cpu_ns_per_spawn.filter(|_| s.mode != Mode::None) {
        notes.push(format!("+{:.0} ns CPU/spawn", spawn.median));
    }
    if let Some(per_task) = s.instrument_cpu_ns_per_task {
        notes.push(format!("instrument threads {:.0} ns/task", per_task.median));
    }
    if let Some(kib) = s.live_kib_per_task {
        let added = s
            .added_kib_per_task
            .filter(|_| s.mode != Mode::None)
            .map_or(String::new(), |a| format!(" (+{:.2})", a.median));
        notes.push(format!("{:.2}{added} KiB/task", kib.median));
    }
    if let (Some(app), Some(instrument)) = (s.app_cpu_pct, s.instrument_cpu_pct) {
        notes.push(format!(
            "app {:.1}%, instrument threads {:.2}% of a core",
            app.median, instrument.median
        ));
    }
    if s.workload == Workload::Churn
        && s.mode != Mode::None
        && let Some(over) = s.peak_rss_over_none_mib
    {
        notes.push(format!("peak RSS {:+.0} MiB vs none", over.median));
    }
    if let Some(latency) = &s.stall_latency {
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
        notes.push(format!(
            "stall->client p50 {} ms, p99 {} ms, max {} ms ({} stalls, {} missed, {} late)",
            ms(latency.p50_ms),
            ms(latency.p99_ms),
            ms(latency.max_ms),
            latency.stalls,
            latency.missed,
            latency.late
        ));
    }
    if let Some(w) = &s.watched {
        let lost = w.drops.total_lost();
        notes.push(format!(
            "client got {} spawn events for {} spawns{}, lost {lost}, delayed {}, evicted {}{}",
            w.tasks_spawned_seen,
            w.tasks_spawned_by_app,
            if w.cut_off {
                " (CUT OFF by the probe mid-run)"
            } else {
                ""
            },
            w.drops.spawn_events_delayed,
            w.drops.ended_tasks_evicted,
            w.error
                .as_ref()
                .map_or(String::new(), |e| format!(" ({e})"))
        ));
    }
    notes.join("; ")
}

/// `median (min-max)`, or just the median when the range would print as one number.
fn spread_text(spread: Option<Spread>, decimals: usize) -> String {
    let Some(s) = spread else {
        return "-".to_owned();
    };
    let [median, min, max] = [s.median, s.min, s.max].map(|v| format!("{v:.decimals$}"));
    if s.varies() && min != max {
        format!("{median} ({min}-{max})")
    } else {
        median
    }
}

fn ratio_text(spread: Option<Spread>) -> String {
    spread_text(spread, 2)
}

/// Left-aligned columns; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |v| v.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if c + 1 == row.len() {
                    v.clone()
                } else {
                    format!("{v:<w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
