//! Task details: every number the model has about one task, its poll-duration histogram
//! with percentiles, where it waits (its await chain), its stalls (with the captured
//! stack), its children and its outcome.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use taskscope_api::histogram;

use crate::duration::human_ns;
use crate::model::stall::shown_frames;
use crate::model::stall::{Phase, Stall};
use crate::model::task::{Kind, Outcome, Task};
use crate::tui::app::App;
use crate::tui::theme::Theme;
use crate::tui::viewmodel::findings::Flags;
use crate::tui::viewmodel::metrics::{self, clock, short_ns};

/// Widest histogram bar.
const BAR: usize = 32;
/// Children listed before "and N more".
const CHILDREN_SHOWN: usize = 24;
/// What a translated console-subscriber stream cannot say (no outcomes, parents, stacks).
const NOT_FROM_CONSOLE: &str = "not available from a console-subscriber target";

/// Frames shown of a stall's stack here, the user's first as in `check`'s report (all of
/// them in the Stalls view's overlay).
const FRAMES_SHOWN: usize = 12;

pub(super) fn render(app: &App, id: u64, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let lines = match app.shown().task(id) {
        Some(task) => lines(app, task),
        None => vec![Line::styled(
            format!("task {id} is gone (ended tasks are kept for a while, then dropped)"),
            theme.dim(),
        )],
    };
    Paragraph::new(lines)
        .scroll((app.detail_scroll, 0))
        .render(area, buf);
}

pub(super) fn label(text: &str, theme: Theme) -> Span<'static> {
    Span::styled(format!("{text:<10}"), theme.title())
}

/// The whole page, top to bottom: who the task is, its numbers, its poll times, its stalls
/// and its children. Each section appends its own lines.
fn lines(app: &App, task: &Task) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    identity_lines(app, task, &mut out);
    out.push(state_line(app, task, app.now_ns()));
    activity_lines(app, task, &mut out);
    out.push(Line::raw(""));
    holder_lines(app, task, &mut out);
    super::awaits::lines(app, task, &mut out);
    histogram_lines(task.stats.poll_histogram.as_deref(), app.theme, &mut out);
    out.push(Line::raw(""));
    stall_lines(app, task.id, &mut out);
    children_lines(app, task.id, &mut out);
    out
}

/// What kind of task, in the words the details use.
pub(super) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Task => "task",
        Kind::Local => "local task",
        Kind::BlockOn => "block_on",
        Kind::Blocking => "spawn_blocking",
        Kind::Unknown => "task",
    }
}

/// The title (id, name, kind, runtime), where and by whom it was spawned, and its flags.
fn identity_lines(app: &App, task: &Task, out: &mut Vec<Line<'static>>) {
    let theme = app.theme;
    let model = app.shown();
    let name = task
        .name
        .as_deref()
        .map(|n| format!(" \"{n}\""))
        .unwrap_or_default();
    let kind = kind_name(task.kind);
    out.push(Line::from(vec![
        Span::styled(format!("Task {}{name}", task.id), theme.title()),
        Span::raw(format!("  ({kind}, runtime {})", task.runtime_id)),
    ]));
    let parent = match task.parent_id {
        0 if model.is_console_target() => format!(" (parent: {NOT_FROM_CONSOLE})"),
        0 => String::new(),
        id => format!(" by task {id}"),
    };
    out.push(Line::from(vec![
        label("Spawned", theme),
        Span::raw(format!(
            "at {}{parent} on {} at {}",
            model.location(task.location),
            model.runtime().thread_name(task.spawn_thread),
            clock(task.spawned_ns)
        )),
    ]));
    let flags = app.derived.findings.flags(task.id);
    if !flags.is_empty() {
        out.push(Line::from(vec![
            label("Flags", theme),
            Span::styled(
                format!(
                    "{} — {}",
                    app.derived.findings.words(task.id),
                    flags.descriptions().join("; ")
                ),
                theme.bad(),
            ),
        ]));
    }
}

/// What it waits on and who holds that, and what it holds (the wait-for graph); on a
/// route that cannot see holders, why and what would.
fn holder_lines(app: &App, task: &Task, out: &mut Vec<Line<'static>>) {
    use crate::tui::viewmodel::holders;
    let theme = app.theme;
    let model = app.shown();
    if !task.is_live() {
        return;
    }
    if let Some(waits) = holders::waits_on(model, task.id) {
        out.push(Line::from(vec![
            label("Waits on", theme),
            Span::styled(waits, theme.title()),
        ]));
    }
    for held in holders::holds(model, task.id) {
        out.push(Line::from(vec![label("Holds", theme), Span::raw(held)]));
    }
    if let Some(why) = model.holders_unavailable() {
        out.push(Line::from(vec![
            label("Holders", theme),
            Span::styled(why.to_owned(), theme.dim()),
        ]));
    }
}

/// Where its time went, its polls and its wakes (live wakers marked when a lost waker is
/// flagged).
fn activity_lines(app: &App, task: &Task, out: &mut Vec<Line<'static>>) {
    let theme = app.theme;
    let now_ns = app.now_ns();
    let stats = &task.stats;
    out.push(Line::from(vec![
        label("Time", theme),
        Span::raw(format!(
            "total {}  busy {}  scheduled {}  idle {}",
            human_ns(metrics::total_ns(task, now_ns)),
            human_ns(stats.busy_ns),
            human_ns(stats.scheduled_ns),
            human_ns(metrics::idle_ns(task, now_ns)),
        )),
    ]));
    out.push(Line::from(vec![
        label("Polls", theme),
        Span::raw(format!(
            "{}  longest {}  last started {}",
            stats.polls,
            human_ns(stats.max_poll_ns),
            clock(stats.last_poll_start_ns)
        )),
    ]));
    let lost_waker = app
        .derived
        .findings
        .flags(task.id)
        .contains(Flags::LOST_WAKER);
    let wakers_style = if lost_waker {
        theme.bad()
    } else {
        Style::new()
    };
    out.push(Line::from(vec![
        label("Wakes", theme),
        Span::raw(format!(
            "{} ({} from itself)  ",
            stats.wakes, stats.self_wakes
        )),
        Span::styled(format!("live wakers {}", stats.wakers), wakers_style),
    ]));
}

fn state_line(app: &App, task: &Task, now_ns: u64) -> Line<'static> {
    let theme = app.theme;
    let text = match task.outcome() {
        Some(Outcome::Panicked {
            message, location, ..
        }) => {
            let at = location
                .as_deref()
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            return Line::from(vec![
                label("Outcome", theme),
                Span::styled(format!("panicked{at}: {message}"), theme.warn()),
            ]);
        }
        Some(Outcome::Completed) => "completed".to_owned(),
        Some(Outcome::Cancelled) => "cancelled (aborted or dropped)".to_owned(),
        Some(Outcome::CancelledAtShutdown) => "cancelled when its runtime shut down".to_owned(),
        Some(Outcome::Unknown) if app.shown().is_console_target() => {
            format!("ended (outcome {NOT_FROM_CONSOLE})")
        }
        Some(Outcome::Unknown) => "ended".to_owned(),
        None => {
            let state = metrics::state_label(task);
            match metrics::current_poll_ns(task, now_ns) {
                Some(ns) => {
                    let thread = app.shown().runtime().thread_name(task.stats.running_thread);
                    let style = if ns >= app.policy.stall_threshold_ns {
                        theme.bad()
                    } else {
                        Style::new()
                    };
                    return Line::from(vec![
                        label("State", theme),
                        Span::styled(format!("{state} for {} on {thread}", human_ns(ns)), style),
                    ]);
                }
                None => state.to_owned(),
            }
        }
    };
    let title = if task.is_live() { "State" } else { "Outcome" };
    let ended = task
        .end
        .as_ref()
        .map(|end| format!(" at {}", clock(end.ended_ns)))
        .unwrap_or_default();
    Line::from(vec![
        label(title, theme),
        Span::raw(format!("{text}{ended}")),
    ])
}

fn histogram_lines(buckets: Option<&[u32]>, theme: Theme, out: &mut Vec<Line<'static>>) {
    // Buckets past the protocol's 44 have no bounds (a newer or broken probe sent them).
    let buckets = buckets.map(|b| &b[..b.len().min(histogram::BUCKETS)]);
    let Some(buckets) = buckets.filter(|b| b.iter().any(|&c| c > 0)) else {
        out.push(Line::from(vec![
            label("Poll time", theme),
            Span::raw("no polls measured yet"),
        ]));
        return;
    };
    let percentile = |q: f64| histogram::quantile(buckets, q).map_or("-".to_owned(), short_ns);
    out.push(Line::from(vec![
        label("Poll time", theme),
        Span::raw(format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}",
            percentile(0.5),
            percentile(0.9),
            percentile(0.99),
            percentile(0.999)
        )),
    ]));
    let max = buckets.iter().copied().max().unwrap_or(1).max(1);
    let first = buckets.iter().position(|&c| c > 0).unwrap_or(0);
    let last = buckets.iter().rposition(|&c| c > 0).unwrap_or(0);
    for (index, &count) in buckets.iter().enumerate().take(last + 1).skip(first) {
        let (low, _) = histogram::bucket_bounds(index);
        let bar = (count as usize * BAR).div_ceil(max as usize);
        let style = if low >= 100_000_000 {
            theme.bad()
        } else {
            theme.good()
        };
        out.push(Line::from(vec![
            Span::raw(format!("  ≥{:>7} ", short_ns(low))),
            Span::styled("█".repeat(bar), style),
            Span::raw(format!(" {count}")),
        ]));
    }
}

fn stall_lines(app: &App, task_id: u64, out: &mut Vec<Line<'static>>) {
    let theme = app.theme;
    let model = app.shown();
    let now_ns = app.now_ns();
    let mut stalls: Vec<_> = model.stalls().filter(|s| s.task_id == task_id).collect();
    stalls.sort_by_key(|s| s.poll_started_ns);
    if stalls.is_empty() {
        out.push(Line::from(vec![label("Stalls", theme), Span::raw("none")]));
        return;
    }
    out.push(Line::from(vec![
        label("Stalls", theme),
        Span::raw(stalls.len().to_string()),
    ]));
    for stall in &stalls {
        let ongoing = stall.phase == Phase::Ongoing;
        out.push(Line::from(vec![
            Span::raw(format!(
                "  #{} at {} ",
                stall.stall_id,
                clock(stall.poll_started_ns)
            )),
            Span::styled(
                format!(
                    "{}{}",
                    human_ns(stall.duration_at(now_ns)),
                    if ongoing { " and counting" } else { "" }
                ),
                if ongoing { theme.bad() } else { theme.warn() },
            ),
            Span::raw(if model.is_console_target() {
                String::new()
            } else {
                format!(" on {}", model.runtime().thread_name(stall.thread))
            }),
        ]));
    }
    stack_lines(app, &stalls, out);
    out.push(Line::raw(""));
}

/// The stack of the latest stall that has one, the user's frames first.
fn stack_lines(app: &App, stalls: &[&Stall], out: &mut Vec<Line<'static>>) {
    let theme = app.theme;
    match stalls.iter().rev().find(|s| !s.stack.is_empty()) {
        Some(stall) => {
            out.push(Line::styled(
                format!("  stack of stall #{} (innermost first):", stall.stall_id),
                theme.dim(),
            ));
            let shown = shown_frames(&stall.stack);
            for frame in shown.iter().take(FRAMES_SHOWN) {
                out.push(frame_line(frame, theme));
            }
            let more = stall.stack.len() - shown.len().min(FRAMES_SHOWN);
            if more > 0 {
                out.push(Line::styled(
                    format!("    … {more} more, the runtime's folded (Stalls view, Enter)"),
                    theme.dim(),
                ));
            }
        }
        None if app.shown().is_console_target() => out.push(Line::styled(
            format!("  stack {NOT_FROM_CONSOLE}"),
            theme.dim(),
        )),
        None => out.push(Line::styled("  no stack was captured", theme.dim())),
    }
}

/// A stack frame: the function, then where it is, user code highlighted.
pub(super) fn frame_line(frame: &crate::model::stall::Frame, theme: Theme) -> Line<'static> {
    let location = frame.location.as_deref().unwrap_or("");
    let user = crate::model::stall::is_user_location(location);
    Line::from(vec![
        Span::styled(
            format!("    {}", frame.function),
            if user { theme.title() } else { Style::new() },
        ),
        Span::styled(
            if location.is_empty() {
                String::new()
            } else {
                format!("  {location}")
            },
            theme.dim(),
        ),
    ])
}

fn children_lines(app: &App, task_id: u64, out: &mut Vec<Line<'static>>) {
    let theme = app.theme;
    let mut children: Vec<u64> = app
        .shown()
        .tasks()
        .filter(|t| t.parent_id == task_id && t.id != task_id)
        .map(|t| t.id)
        .collect();
    children.sort_unstable();
    let mut text: Vec<String> = children
        .iter()
        .take(CHILDREN_SHOWN)
        .map(u64::to_string)
        .collect();
    if children.len() > CHILDREN_SHOWN {
        text.push(format!("and {} more", children.len() - CHILDREN_SHOWN));
    }
    let text = if text.is_empty() {
        "none".to_owned()
    } else {
        text.join(" ")
    };
    out.push(Line::from(vec![
        label("Children", theme),
        Span::raw(format!("({}) {text}", children.len())),
    ]));
}
