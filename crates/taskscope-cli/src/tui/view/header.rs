//! The header: what is watched and how the link is, then the counts that matter, with the
//! probe's dropped events and a missing instrumentation impossible to overlook.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::model::Instrumentation;
use crate::tui::app::{App, Link, Source};
use crate::tui::viewmodel::metrics::clock;

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    buf.set_line(area.x, area.y, &first_line(app), area.width);
    if area.height > 1 {
        buf.set_line(area.x, area.y + 1, &second_line(app), area.width);
    }
}

fn first_line(app: &App) -> Line<'static> {
    let theme = app.theme;
    let mut spans = vec![
        Span::styled("taskscope ", theme.title()),
        Span::raw(app.target.clone()),
        Span::raw("  "),
    ];
    link_spans(app, &mut spans);
    process_spans(app, &mut spans);
    Line::from(spans)
}

/// How the link is: live, paused, waiting, lost, or where the replay is.
fn link_spans(app: &App, spans: &mut Vec<Span<'static>>) {
    let theme = app.theme;
    match &app.source {
        Source::Live(Link::Live) if app.frozen.is_some() => {
            spans.push(Span::styled("‖ paused (space resumes)", theme.warn()));
        }
        Source::Live(Link::Live) => spans.push(Span::styled("● live", theme.good())),
        Source::Live(Link::Waiting { retry_in, .. }) => {
            let what = if app.shown().pid() == 0 {
                "waiting for"
            } else {
                "disconnected; waiting for"
            };
            let retry = if retry_in.is_zero() {
                String::new()
            } else {
                format!(" (retry in {:.1}s)", retry_in.as_secs_f64())
            };
            spans.push(Span::styled(
                format!("○ {what} {}{retry}", app.target),
                theme.warn(),
            ));
        }
        Source::Live(Link::Lost { reason }) => {
            spans.push(Span::styled(
                format!("○ disconnected: {reason}"),
                theme.bad(),
            ));
        }
        Source::Replay(player) => {
            let state = if player.playing() { "▶" } else { "‖" };
            spans.push(Span::styled(
                format!(
                    "{state} replay {}/{} ×{}",
                    clock(player.elapsed_ns()),
                    clock(player.length_ns()),
                    speed(player.speed())
                ),
                theme.title(),
            ));
            let stalls = player.stall_count();
            let plural = if stalls == 1 { "" } else { "s" };
            spans.push(Span::raw(format!("  {stalls} stall{plural} ([ ] jump)")));
            if player.truncated {
                spans.push(Span::styled(" (cut short)", theme.warn()));
            }
        }
    }
}

/// The process watched and its uptime, or what a console-subscriber target cannot show.
fn process_spans(app: &App, spans: &mut Vec<Span<'static>>) {
    let model = app.shown();
    if model.is_console_target() {
        // Say what this view cannot show, rather than show zeros for it.
        spans.push(Span::styled(
            format!(
                "  up {}  console-subscriber target: stalls at 1 s granularity; no stacks, \
                 outcomes, parents, threads",
                clock(app.now_ns())
            ),
            app.theme.dim(),
        ));
    } else if let Some(process) = model.process() {
        let program = process
            .program
            .rsplit('/')
            .next()
            .unwrap_or(&process.program);
        spans.push(Span::raw(format!(
            "  pid {} {program}  up {}",
            process.pid,
            clock(app.now_ns())
        )));
    }
}

fn speed(speed: f64) -> String {
    if speed >= 1.0 {
        format!("{speed:.0}")
    } else {
        format!("{speed}")
    }
}

/// A process built without `--cfg tokio_unstable`: its workers, their stalls, and what
/// the cfg would add.
fn workers_line(app: &App) -> Line<'static> {
    let theme = app.theme;
    let model = app.shown();
    let threads = model.runtime().threads().filter(|(_, t)| !t.exited).count();
    let findings = &app.derived.findings;
    let now_style = if findings.stalls_now > 0 {
        theme.bad()
    } else {
        ratatui::style::Style::new()
    };
    Line::from(vec![
        Span::raw(format!("threads {threads} │ stalls now ")),
        Span::styled(findings.stalls_now.to_string(), now_style),
        Span::raw(format!(" total {} │ ", findings.stalls_total)),
        Span::styled(
            "no tasks without --cfg tokio_unstable, which adds them",
            theme.dim(),
        ),
    ])
}

fn second_line(app: &App) -> Line<'static> {
    let theme = app.theme;
    let model = app.shown();
    if model.sees_workers_only() {
        return workers_line(app);
    }
    if model.instrumentation() == Instrumentation::Missing {
        return Line::from(Span::styled(
            " NOT INSTRUMENTED: built without --cfg tokio_unstable, tokio reports no tasks ",
            theme.alarm(),
        ));
    }
    if model.instrumentation() == Instrumentation::Filtered {
        return Line::from(Span::styled(
            " NO TASKS SEEN: a filter hides tokio's task spans; filter the log layer alone ",
            theme.alarm(),
        ));
    }
    let counts = app.derived.counts;
    let findings = &app.derived.findings;
    let mut spans = vec![Span::raw(format!(
        "tasks {}: run {} sched {} idle {} ended {}",
        counts.total(),
        counts.running,
        counts.scheduled,
        counts.idle,
        counts.ended
    ))];
    if counts.folded > 0 {
        spans.push(Span::styled(
            format!(" +{} short-lived counted by site", counts.folded),
            theme.dim(),
        ));
    }
    spans.push(Span::raw(" │ stalls now "));
    let now_style = if findings.stalls_now > 0 {
        theme.bad()
    } else {
        ratatui::style::Style::new()
    };
    spans.push(Span::styled(findings.stalls_now.to_string(), now_style));
    spans.push(Span::raw(format!(" total {}", findings.stalls_total)));
    spans.push(Span::raw(" │ "));
    let leaks = findings.leaks();
    spans.push(Span::styled(
        format!("leaks {leaks}"),
        if leaks > 0 {
            theme.warn()
        } else {
            ratatui::style::Style::new()
        },
    ));
    let drops = model.drops();
    let parts = dropped_parts(drops);
    let dropped = parts
        .iter()
        .map(|(n, _)| *n)
        .fold(0u64, u64::saturating_add);
    spans.push(Span::raw(" │ "));
    if dropped > 0 {
        let what: Vec<String> = parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        spans.push(Span::styled(
            format!(" PROBE DROPPED {dropped}: {} ", what.join(", ")),
            theme.alarm(),
        ));
    } else {
        spans.push(Span::styled("drops 0", theme.dim()));
    }
    Line::from(spans)
}

/// What the probe lost, each count with its name: the header names the non-zero ones.
/// Spawns announced late are not lost, so not counted.
fn dropped_parts(drops: &taskscope_api::v1::Drops) -> [(u64, &'static str); 5] {
    [
        (drops.tasks_lost, "tasks"),
        (drops.stall_events, "stall facts"),
        (drops.recording_updates, "recording updates"),
        (drops.ended_tasks_evicted, "evicted"),
        (drops.wait_events, "wait facts"),
    ]
}
