//! The task table: flags, state, the running poll's duration (red past the stall
//! threshold), times, counts and where each task was spawned. Columns that do not fit
//! are left out, least useful first, so 80 columns still show what matters.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;

use super::table::{self, Cell, Col};
use crate::model::folded::Folded;
use crate::model::task::{Kind, Task};
use crate::model::{Instrumentation, LocationId};
use crate::tui::app::{App, Link, Source};
use crate::tui::viewmodel::findings::Flags;
use crate::tui::viewmodel::metrics::{self, compact, grouped, short_count, short_ns};
use crate::tui::viewmodel::rows::{Column, Item, SITE_MARK, SITE_STATE};

/// The flag column in words (`STALL 612.4ms`, `LOST WAKER`), where the terminal has room.
const FLAGS_IN_WORDS: u16 = 13;
/// The flag column as one letter a flag (`Sc`), on terminals too narrow for words.
const FLAGS_IN_LETTERS: u16 = 5;

/// The columns that must fit for the flags to be written in words: those a task is
/// recognised and judged by.
const ESSENTIAL: usize = 6;

/// Width of each column (the location takes what is left).
fn width(column: Column, flags: u16) -> u16 {
    match column {
        Column::Flags => flags,
        Column::Id => 7,
        Column::Name => 16,
        Column::State => 9,
        Column::Poll => 8,
        Column::Total | Column::Busy | Column::Scheduled | Column::Idle => 7,
        Column::Polls => 6,
        Column::Wakers => 3,
        Column::Location => LOCATION_MIN,
        Column::Parent => 7,
    }
}

const LOCATION_MIN: u16 = 20;

/// The order columns are given room in.
const PRIORITY: [Column; 13] = [
    Column::Flags,
    Column::Id,
    Column::State,
    Column::Poll,
    Column::Location,
    Column::Name,
    Column::Busy,
    Column::Polls,
    Column::Total,
    Column::Idle,
    Column::Scheduled,
    Column::Wakers,
    Column::Parent,
];

/// The columns shown at `total` width, in display order, with their widths. The flags
/// are written in words when the essential columns fit with them, else in letters.
pub(super) fn columns(total: u16, tree: bool) -> Vec<(Column, u16)> {
    let mut priority: Vec<Column> = PRIORITY.to_vec();
    if tree {
        // The tree is drawn in the name column: it must be there.
        priority.retain(|&c| c != Column::Name);
        priority.insert(2, Column::Name);
    }
    let essential: u16 = priority[..ESSENTIAL]
        .iter()
        .map(|&c| width(c, FLAGS_IN_WORDS) + 1)
        .sum::<u16>()
        - 1;
    let flags = if essential <= total {
        FLAGS_IN_WORDS
    } else {
        FLAGS_IN_LETTERS
    };
    let mut chosen = Vec::new();
    let mut used: u16 = 0;
    for column in priority {
        let need = width(column, flags) + u16::from(!chosen.is_empty());
        if used + need <= total {
            chosen.push(column);
            used += need;
        }
    }
    let spare = total.saturating_sub(used);
    Column::ALL
        .iter()
        .filter(|c| chosen.contains(c))
        .map(|&c| {
            let w = if c == Column::Location {
                width(c, flags) + spare
            } else {
                width(c, flags)
            };
            (c, w)
        })
        .collect()
}

/// The task column under `x` (relative to the table's left edge).
pub(super) fn column_at(app: &App, total: u16, x: u16) -> Option<Column> {
    let mut start = 0;
    for (column, w) in columns(total, app.query.tree) {
        if x >= start && x < start + w + 1 {
            return Some(column);
        }
        start += w + 1;
    }
    None
}

/// Where the table goes: below the banner, when there is one.
pub(super) fn table_area(app: &App, body: Rect) -> Rect {
    let banner = u16::from(banner(app).is_some()) * 4;
    if body.height <= banner + 2 {
        return body;
    }
    Rect::new(body.x, body.y + banner, body.width, body.height - banner)
}

/// Why the table is empty or cannot be trusted, when it is the case.
fn banner(app: &App) -> Option<[&'static str; 3]> {
    let model = app.shown();
    match model.instrumentation() {
        _ if model.sees_workers_only() => Some([
            "Built without `--cfg tokio_unstable`: the probe sees the runtime's workers, not",
            "tasks. 2 Stalls shows each blocked worker with its stack, 4 Runtime each worker.",
            "Build with RUSTFLAGS=\"--cfg tokio_unstable\" to see every task in this table.",
        ]),
        Instrumentation::Missing => Some([
            "This process was built without `--cfg tokio_unstable`: tokio reports no tasks.",
            "Rebuild it with RUSTFLAGS=\"--cfg tokio_unstable\" (or add `rustflags = [\"--cfg\",",
            "\"tokio_unstable\"]` under [build] in .cargo/config.toml), then restart it.",
        ]),
        Instrumentation::Filtered => Some([
            "The app's tracing subscriber filters tokio's task spans away before the probe sees",
            "them: a filter added with `.with(EnvFilter::…)` decides for every layer. Put it on",
            "the log layer: `.with(fmt::layer().with_filter(EnvFilter::from_default_env()))`.",
        ]),
        _ if model.process().is_some() && !model.waker_tracking() => Some([
            "Waker tracking is off, so lost wakers cannot be seen and scheduled time is 0.",
            "Restart the process with TASKSCOPE_WAKERS=on to see them.",
            "",
        ]),
        _ => None,
    }
}

pub(super) fn render(app: &App, body: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    render_banner(app, body, buf);
    let area = table_area(app, body);
    let cols = columns(area.width, app.query.tree);
    let layout: Vec<Col> = cols
        .iter()
        .map(|&(column, w)| match column {
            Column::Flags | Column::Id | Column::Name | Column::State | Column::Location => {
                Col::left(column.title(), w)
            }
            _ => Col::right(column.title(), w),
        })
        .collect();
    let sort = app.query.sort;
    let marked = cols
        .iter()
        .position(|&(c, _)| c == sort.column)
        .map(|i| (i, sort.descending()));
    let model = app.shown();
    let rows = &app.derived.rows;
    let now_ns = app.now_ns();
    table::render(
        area,
        buf,
        theme,
        &layout,
        marked,
        rows.len(),
        &app.tasks,
        |index| {
            let row = rows[index];
            let found = match row.item {
                Item::Task(id) => model
                    .task(id)
                    .map(|task| cells(app, task, row.depth, &cols, now_ns)),
                Item::Site(site) => model
                    .folded_at(site)
                    .map(|tally| site_cells(app, site, tally, &cols)),
            };
            found.unwrap_or_else(|| vec![(String::new(), Style::new()); cols.len()])
        },
    );
    if rows.is_empty() {
        let text = empty_text(app);
        table::empty(area, buf, &text, theme.dim());
        render_waiting_reason(app, area, buf);
    }
}

/// The banner above the table: the process is not instrumented, its subscriber hides tokio's
/// task spans, or wakers are not tracked.
fn render_banner(app: &App, body: Rect, buf: &mut Buffer) {
    let Some(lines) = banner(app) else {
        return;
    };
    let style = if matches!(
        app.shown().instrumentation(),
        Instrumentation::Missing | Instrumentation::Filtered
    ) {
        app.theme.alarm()
    } else {
        app.theme.warn()
    };
    for (i, text) in lines.iter().enumerate().take(usize::from(body.height)) {
        buf.set_line(
            body.x + 1,
            body.y + i as u16,
            &Line::styled(*text, style),
            body.width,
        );
    }
}

/// Below the empty table's message, why the last attempt to connect failed: a wrong
/// address or a service that is not a probe must not look like one that is merely slow to
/// start.
fn render_waiting_reason(app: &App, area: Rect, buf: &mut Buffer) {
    let Source::Live(Link::Waiting { reason, .. }) = &app.source else {
        return;
    };
    if reason.is_empty() || area.height <= 4 {
        return;
    }
    let below = Rect::new(area.x, area.y + 2, area.width, area.height - 2);
    let lines: Vec<&str> = textwrap(reason, usize::from(area.width.saturating_sub(4)));
    for (i, line) in lines.iter().enumerate().take(usize::from(below.height) / 2) {
        let y = below.y + 1 + (below.height - 1) / 3 + i as u16;
        if y < below.bottom() {
            buf.set_line(
                area.x + 2,
                y,
                &Line::styled(*line, app.theme.warn()),
                area.width,
            );
        }
    }
}

/// Splits `text` at spaces into lines of at most `width` characters (longer words are
/// cut by the buffer).
pub(super) fn textwrap(text: &str, width: usize) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if rest.chars().count() <= width || width == 0 {
            lines.push(rest);
            break;
        }
        let cut = rest
            .char_indices()
            .take(width + 1)
            .filter(|&(_, c)| c == ' ')
            .map(|(i, _)| i)
            .last()
            .unwrap_or_else(|| {
                rest.char_indices()
                    .nth(width)
                    .map_or(rest.len(), |(i, _)| i)
            });
        lines.push(rest[..cut].trim_end());
        rest = rest[cut..].trim_start();
    }
    lines
}

fn empty_text(app: &App) -> String {
    if !app.query.filter.is_empty() {
        return format!(
            "no task matches \"{}\" (Esc clears the filter)",
            app.query.filter
        );
    }
    match &app.source {
        Source::Live(Link::Waiting { .. }) if app.shown().pid() == 0 => {
            format!("waiting for {} …", app.target)
        }
        _ if app.shown().sees_workers_only() => {
            "no tasks without --cfg tokio_unstable: see 2 Stalls and 4 Runtime".to_owned()
        }
        _ if app.shown().instrumentation() == Instrumentation::Missing => {
            "no tasks: tokio instrumentation is missing".to_owned()
        }
        _ if app.shown().instrumentation() == Instrumentation::Filtered => {
            "no tasks: tokio's task spans are filtered away".to_owned()
        }
        _ => "no tasks yet".to_owned(),
    }
}

fn cells(app: &App, task: &Task, depth: u16, cols: &[(Column, u16)], now_ns: u64) -> Vec<Cell> {
    let theme = app.theme;
    let model = app.shown();
    let flags = app.derived.findings.flags(task.id);
    let base = if task.is_live() {
        Style::new()
    } else {
        theme.dim()
    };
    cols.iter()
        .map(|&(column, w)| match column {
            Column::Flags => flags_cell(app, task.id, w, base),
            Column::Id => (task.id.to_string(), base),
            Column::Name => name_cell(app, task, depth, base),
            Column::State => {
                let label = metrics::state_label(task);
                let style = match label {
                    "panicked" => theme.warn(),
                    "running" => theme.good(),
                    _ => base,
                };
                (label.to_owned(), style)
            }
            Column::Poll => poll_cell(app, task, now_ns, base),
            Column::Total => (short_ns(metrics::total_ns(task, now_ns)), base),
            Column::Busy => (short_ns(task.stats.busy_ns), base),
            Column::Scheduled => (short_ns(task.stats.scheduled_ns), base),
            Column::Idle => (short_ns(metrics::idle_ns(task, now_ns)), base),
            Column::Polls => (short_count(task.stats.polls, usize::from(w)), base),
            Column::Wakers => {
                let style = if flags.contains(Flags::LOST_WAKER) {
                    theme.bad()
                } else {
                    base
                };
                (task.stats.wakers.to_string(), style)
            }
            Column::Location => (
                table::fit_end(model.location(task.location), usize::from(w)),
                base,
            ),
            Column::Parent => match task.parent_id {
                0 => (String::new(), base),
                id => (id.to_string(), base),
            },
        })
        .collect()
}

/// A spawn site's row: its short-lived tasks counted by the probe, in one row marked
/// `site`: how many (in the name column, as no task of them had a name), their state
/// (all completed), their polls and busy time added up, and where they were spawned. The
/// numbers of one task (its id, times, wakers, parent) are left empty.
fn site_cells(app: &App, site: LocationId, tally: &Folded, cols: &[(Column, u16)]) -> Vec<Cell> {
    let base = app.theme.dim();
    cols.iter()
        .map(|&(column, w)| match column {
            Column::Flags => (SITE_MARK.to_owned(), app.theme.title()),
            Column::Name => (site_count(tally.tasks, usize::from(w)), base),
            Column::State => (SITE_STATE.to_owned(), base),
            Column::Busy => (short_ns(tally.busy_ns), base),
            Column::Polls => (short_count(tally.polls, usize::from(w)), base),
            Column::Location => (
                table::fit_end(app.shown().location(site), usize::from(w)),
                base,
            ),
            Column::Id
            | Column::Poll
            | Column::Total
            | Column::Scheduled
            | Column::Idle
            | Column::Wakers
            | Column::Parent => (String::new(), base),
        })
        .collect()
}

/// How many tasks a site's row stands for, `×2,400 tasks`, shortened to `×1.92M tasks`
/// where the exact count does not fit `width`.
pub(super) fn site_count(tasks: u64, width: usize) -> String {
    let exact = format!(
        "×{} tasks",
        grouped(usize::try_from(tasks).unwrap_or(usize::MAX))
    );
    if exact.chars().count() <= width {
        return exact;
    }
    format!("×{} tasks", compact(tasks))
}

/// The task's flags: red while it stalls its thread or has lost its waker, yellow for the
/// rest; in words where the column is wide enough, else one letter each.
fn flags_cell(app: &App, id: u64, width: u16, base: Style) -> Cell {
    let theme = app.theme;
    let flags = app.derived.findings.flags(id);
    let style = if flags.contains(Flags::STALL_NOW) || flags.contains(Flags::LOST_WAKER) {
        theme.bad()
    } else if flags.is_empty() {
        base
    } else {
        theme.warn()
    };
    let text = if width >= FLAGS_IN_WORDS {
        app.derived.findings.words(id)
    } else {
        flags.glyphs()
    };
    (text, style)
}

/// The name, indented under its parent in the tree.
fn name_cell(app: &App, task: &Task, depth: u16, base: Style) -> Cell {
    let name = task.name.as_deref().unwrap_or("");
    if app.query.tree && depth > 0 {
        let indent = "  ".repeat(usize::from(depth.min(16) - 1));
        (format!("{indent}└ {name}"), base)
    } else {
        (name.to_owned(), base)
    }
}

/// How long the poll running now has lasted, red past the stall threshold.
fn poll_cell(app: &App, task: &Task, now_ns: u64, base: Style) -> Cell {
    match metrics::current_poll_ns(task, now_ns) {
        // spawn_blocking is there to block: a long "poll" of one is no stall.
        Some(ns) if ns >= app.policy.stall_threshold_ns && task.kind != Kind::Blocking => {
            (short_ns(ns), app.theme.bad())
        }
        Some(ns) => (short_ns(ns), base),
        None => (String::new(), base),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eighty_columns_keep_the_columns_that_matter() {
        let cols: Vec<Column> = columns(80, false).into_iter().map(|(c, _)| c).collect();
        for needed in [
            Column::Flags,
            Column::Id,
            Column::State,
            Column::Poll,
            Column::Location,
        ] {
            assert!(
                cols.contains(&needed),
                "{needed:?} missing at 80 columns: {cols:?}"
            );
        }
        let total: u16 = columns(80, false).iter().map(|(_, w)| w + 1).sum();
        assert!(total <= 81);
        assert_eq!(columns(200, false).len(), Column::ALL.len());
    }

    #[test]
    fn flags_are_words_where_the_essential_columns_fit_and_letters_below() {
        let flags = |total| columns(total, false)[0];
        assert_eq!(flags(80), (Column::Flags, FLAGS_IN_WORDS));
        assert_eq!(flags(70), (Column::Flags, FLAGS_IN_LETTERS));
        assert_eq!(columns(70, false).len(), columns(80, false).len());
    }

    #[test]
    fn a_sites_count_is_exact_where_it_fits_and_short_where_not() {
        assert_eq!(site_count(2_400, 16), "×2,400 tasks");
        assert_eq!(site_count(1_918_671, 16), "×1,918,671 tasks");
        assert_eq!(site_count(1_918_671, 12), "×1.92M tasks");
        assert_eq!(site_count(u64::MAX, 16), "×18446744T tasks");
    }

    #[test]
    fn a_tree_always_has_its_name_column() {
        assert!(columns(60, true).iter().any(|&(c, _)| c == Column::Name));
    }
}
