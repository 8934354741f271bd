//! The report as a text table, one row per (workload, mode), with the figures that only
//! some workloads have (per poll, per task, steady state, latency) as notes.

use super::{Report, Summary};
use crate::mode::Mode;
use crate::stats::Spread;
use crate::workload::Workload;

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
            .map_or(String::new(), |a| format!(" ({:+.0})", a.median));
        notes.push(format!("{:.0}{added} ns CPU/poll", per_poll.median));
    }
    if let Some(spawn) = s.added_cpu_ns_per_spawn.filter(|_| s.mode != Mode::None) {
        notes.push(format!("{:+.0} ns CPU/spawn", spawn.median));
    }
    if let Some(per_task) = s.instrument_cpu_ns_per_task {
        notes.push(format!("instrument threads {:.0} ns/task", per_task.median));
    }
    if let Some(kib) = s.live_kib_per_task {
        let added = s
            .added_kib_per_task
            .filter(|_| s.mode != Mode::None)
            .map_or(String::new(), |a| format!(" ({:+.2})", a.median));
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
            "client got {} spawn events and {} tasks counted by site for {} spawns{}, lost \
             {lost}, delayed {}, evicted {}{}",
            w.tasks_spawned_seen,
            w.tasks_folded_seen,
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
pub(crate) fn table(rows: &[Vec<String>]) -> String {
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
