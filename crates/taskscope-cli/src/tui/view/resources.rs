//! Resources: every tokio `Mutex`, `RwLock` and `Semaphore` held or waited on, and every
//! task others await through `taskscope::join`: who holds it and how long, who waits on it
//! and how long, and whether it is in a deadlock, trouble first. Enter opens the holder's
//! details. Where the probe cannot see holders, the line above the table says why and
//! what would (the probe's own words, `ProcessInfo.holders_unavailable`).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;

use super::table::{self, Align, Cell, Col};
use crate::tui::app::App;
use crate::tui::theme::Theme;
use crate::tui::viewmodel::metrics::short_ns;
use crate::tui::viewmodel::resources::{InCycle, Row};

/// Lines of the facts above the table at most (a reason holders are not seen wraps).
const FACT_LINES: usize = 4;

/// The facts above the table, wrapped to `width`.
fn fact_lines(app: &App, width: u16) -> (Vec<String>, Style) {
    let (text, style) = facts(app);
    let lines = super::tasks::textwrap(&text, usize::from(width))
        .into_iter()
        .take(FACT_LINES)
        .map(str::to_owned)
        .collect();
    (lines, style)
}

/// Where the table of resources is drawn in the body: below the facts and a blank line.
pub(super) fn table_area(app: &App, body: Rect) -> Rect {
    let (lines, _) = fact_lines(app, body.width);
    let above = (lines.len() as u16 + 1).min(body.height);
    Rect::new(body.x, body.y + above, body.width, body.height - above)
}

/// The tab's style when not selected: red while a deadlock stands, yellow while a cycle
/// forms.
pub(super) fn tab_style(app: &App) -> Style {
    let rows = &app.derived.resources;
    if rows
        .iter()
        .any(|r| matches!(r.cycle, InCycle::Deadlock { .. }))
    {
        app.theme.bad()
    } else if rows
        .iter()
        .any(|r| matches!(r.cycle, InCycle::Forming { .. }))
    {
        app.theme.warn()
    } else {
        Style::new()
    }
}

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let theme = app.theme;
    let rows = &app.derived.resources;
    let (lines, style) = fact_lines(app, area.width);
    for (y, line) in (area.y..area.bottom()).zip(lines) {
        buf.set_line(area.x, y, &Line::styled(line, style), area.width);
    }
    let area = table_area(app, area);
    // The fixed columns; where it was created and who holds it share the rest.
    let fixed = 8 + 9 + 7 + 14 + 8 + 6;
    let shared = area.width.saturating_sub(fixed).max(24);
    let created = (shared * 2 / 5).clamp(12, 36);
    let held_by = shared.saturating_sub(created).max(12);
    let cols = [
        Col::left("", 8),
        Col::left("Kind", 9),
        Col::left("Created at", created),
        Col::left("Held by", held_by),
        Col::right("Held", 7),
        Col::left("Waiters", 14),
        Col::right("Waiting", 8),
    ];
    table::render(
        area,
        buf,
        theme,
        &cols,
        None,
        rows.len(),
        &app.resources,
        |index| {
            cells(
                &rows[index],
                usize::from(created),
                usize::from(held_by),
                theme,
            )
        },
    );
    if rows.is_empty() && app.shown().process().is_some() {
        let text = if app.shown().holders_unavailable().is_some() {
            "no task awaits another through taskscope::join"
        } else {
            "no task holds or waits on a lock, a permit or a join now"
        };
        table::empty(area, buf, text, theme.dim());
    }
}

/// The line above the table: why holders are not seen, or what is.
fn facts(app: &App) -> (String, Style) {
    let theme = app.theme;
    let model = app.shown();
    if let Some(why) = model.holders_unavailable() {
        return (format!("Holders not seen: {why}"), theme.warn());
    }
    if model.process().is_none() {
        return (String::new(), Style::new());
    }
    let rows = &app.derived.resources;
    let deadlocked = rows
        .iter()
        .filter(|r| matches!(r.cycle, InCycle::Deadlock { .. }))
        .count();
    let waited = rows.iter().filter(|r| !r.waiters.is_empty()).count();
    let mut text = format!(
        "{} held or waited on, {waited} with waiters",
        plural(rows.len(), "resource")
    );
    let mut style = Style::new();
    let forming = rows
        .iter()
        .filter_map(|r| match r.cycle {
            InCycle::Forming { stood_ns } => Some(stood_ns),
            _ => None,
        })
        .max();
    if deadlocked > 0 {
        text.push_str(&format!(", {deadlocked} in a deadlock"));
        style = theme.bad();
    } else if let Some(stood_ns) = forming {
        text.push_str(&format!(
            "; a cycle of waits has stood {} (a deadlock at {})",
            short_ns(stood_ns),
            short_ns(app.policy.deadlock_after_ns)
        ));
        style = theme.warn();
    }
    let left_out = model.wait_graph().left_out;
    if left_out > 0 {
        text.push_str(&format!(
            "; the probe left {left_out} out of its message (size limit)"
        ));
    }
    (text, style)
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// One row's cells; `created` and `held_by` are the widths of their columns.
fn cells(row: &Row, created: usize, held_by: usize, theme: Theme) -> Vec<Cell> {
    let mark = match row.cycle {
        InCycle::Deadlock { .. } => ("DEADLOCK".to_owned(), theme.bad()),
        InCycle::Forming { .. } => ("forming".to_owned(), theme.warn()),
        InCycle::No => (String::new(), Style::new()),
    };
    let location = if row.location.is_empty() {
        ("unknown".to_owned(), theme.dim())
    } else {
        (table::fit_end(&row.location, created), Style::new())
    };
    vec![
        mark,
        (row.kind.clone(), theme.title()),
        location,
        holders(row, held_by, theme),
        (
            row.holders
                .first()
                .and_then(|h| h.held_ns)
                .map(short_ns)
                .unwrap_or_default(),
            Style::new(),
        ),
        waiters(row),
        (
            row.longest_wait_ns.map(short_ns).unwrap_or_default(),
            if row.waiters.is_empty() {
                Style::new()
            } else {
                theme.warn()
            },
        ),
    ]
}

/// "task 5 transfer", its spawn site cut from the left, "+2" more holders, "(a guess)".
fn holders(row: &Row, width: usize, theme: Theme) -> Cell {
    let Some(first) = row.holders.first() else {
        return ("free".to_owned(), theme.dim());
    };
    let mut tail = String::new();
    let total: u32 = row.holders.iter().map(|h| h.count).sum();
    if row.holders.len() > 1 {
        tail.push_str(&format!(" +{}", row.holders.len() - 1));
    } else if total > 1 {
        tail.push_str(&format!(" ×{total}"));
    }
    if row.guessed {
        tail.push_str(" (a guess)");
    }
    let head = match first.task {
        0 => String::new(),
        task => format!("task {task} "),
    };
    let room = width.saturating_sub(head.chars().count() + tail.chars().count());
    let what = table::fit_end(&first.what, room);
    (
        table::fit(
            &format!("{head}{}{tail}", what.trim_end()),
            width,
            Align::Left,
        ),
        Style::new(),
    )
}

/// "1: 6", "3: 6 7 9…": how many wait, and who, longest wait first.
fn waiters(row: &Row) -> Cell {
    if row.waiters.is_empty() {
        return (String::new(), Style::new());
    }
    let ids: Vec<String> = row.waiters.iter().map(u64::to_string).collect();
    (
        format!("{}: {}", row.waiters.len(), ids.join(" ")),
        Style::new(),
    )
}
