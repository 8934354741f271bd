//! The Timeline view: what every thread did over the last seconds, one row per thread
//! (workers first, then blocking threads), shaded by how busy it was, stalls marked, with
//! a cursor whose column is spelled out below: the task that took most of it per thread.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::duration::human_ns;
use crate::tui::app::App;
use crate::tui::theme::Theme;
use crate::tui::viewmodel::timeline::{Cell, Timeline, ZOOMS_S};

/// Width of the thread labels before the cells.
const LABEL: usize = 24;

/// The picture for a body of `width` columns, as the app stands.
pub(crate) fn compute(app: &App, width: u16) -> Timeline {
    let model = app.shown();
    let stalls =
        (app.derived.stalls.iter()).filter_map(|id| model.stalls().find(|s| s.stall_id == *id));
    let columns = usize::from(width).saturating_sub(LABEL + 1).max(1);
    Timeline::compute(
        model,
        stalls,
        ZOOMS_S[app.timeline.zoom],
        columns,
        app.timeline.back,
    )
}

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let theme = app.theme;
    let timeline = compute(app, area.width);
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!(
                "every thread over the last {} s",
                ZOOMS_S[app.timeline.zoom]
            ),
            theme.title(),
        ),
        Span::styled(
            format!(
                "  (one column: {}; + - zoom, ← → cursor)",
                human_ns(timeline.column_ns)
            ),
            theme.dim(),
        ),
    ])];
    for why in &timeline.blind {
        lines.push(Line::styled(format!("cannot see: {why}"), theme.warn()));
    }
    if timeline.rows.is_empty() {
        if timeline.blind.is_empty() {
            lines.push(Line::raw("no thread has polled a task yet"));
        }
    } else {
        for row in &timeline.rows {
            let blocking = if row.blocking { "blocking " } else { "" };
            let label = format!("#{} {blocking}{}", row.thread, row.name);
            let mut spans = vec![Span::raw(format!("{} ", fit(&label, LABEL)))];
            for (column, &cell) in row.cells.iter().enumerate() {
                let mut span = glyph(cell, theme);
                if column == timeline.cursor {
                    span.style = span.style.patch(theme.selected());
                }
                spans.push(span);
            }
            lines.push(Line::from(spans));
        }
        lines.push(axis(&timeline, theme));
        lines.push(Line::styled(
            format!(
                "{:LABEL$} █ ▓ ▒ ░ busy (over ¾, ½, ¼, some)  ' ' idle  ! a stall going on",
                ""
            ),
            theme.dim(),
        ));
        lines.extend(details(&timeline, theme));
    }
    for (index, line) in lines.iter().take(usize::from(area.height)).enumerate() {
        buf.set_line(area.x, area.y + index as u16, line, area.width);
    }
}

/// Below the cells: seconds before the latest update, and the cursor's mark.
fn axis(timeline: &Timeline, theme: Theme) -> Line<'static> {
    let mut text: Vec<char> = vec![' '; timeline.columns];
    // Whole seconds back from the right edge, as many as fit without touching.
    let end_ns = timeline.now_ns;
    let span_s = (end_ns as i64 - timeline.from_ns).max(0) as u64 / 1_000_000_000;
    let step_s = [1, 2, 5, 10]
        .into_iter()
        .find(|step| (span_s / step) as usize * 7 <= timeline.columns)
        .unwrap_or(10);
    let mut free_from = 0;
    for ago_s in (1..=span_s / step_s).rev().map(|k| k * step_s) {
        let at_ns = end_ns as i64 - (ago_s * 1_000_000_000) as i64;
        let column = ((at_ns - timeline.from_ns).max(0) as u64 / timeline.column_ns) as usize;
        let label = format!("|-{ago_s}s");
        if column < free_from || column + label.len() > timeline.columns {
            continue;
        }
        for (i, c) in label.chars().enumerate() {
            text[column + i] = c;
        }
        free_from = column + label.len() + 1;
    }
    if let Some(slot) = text.get_mut(timeline.cursor) {
        *slot = '▲';
    }
    Line::from(vec![
        Span::raw(format!("{:LABEL$} ", "s before now")),
        Span::styled(text.into_iter().collect::<String>(), theme.dim()),
    ])
}

/// The cursor's column spelled out: per thread, the task that took most of it.
fn details(timeline: &Timeline, theme: Theme) -> Vec<Line<'static>> {
    let ago = (timeline.now_ns as i64 - timeline.cursor_ns()).max(0) as u64;
    let mut lines = vec![Line::styled(
        format!(
            "at the cursor, {} s before now ({} wide):",
            seconds(ago),
            human_ns(timeline.column_ns)
        ),
        theme.title(),
    )];
    let shown = timeline
        .rows
        .iter()
        .filter_map(|row| Some((row, row.at_cursor.as_ref()?)));
    let mut any = false;
    for (row, (task, percent)) in shown {
        any = true;
        let label = fit(&format!("#{} {}", row.thread, row.name), LABEL);
        lines.push(match percent {
            // A thread with a poll in the column was never idle all of it.
            Some(0) => Line::raw(format!("{label}  <1%  {task}")),
            Some(percent) => Line::raw(format!("{label} {percent:>3}%  {task}")),
            None => Line::styled(format!("{label} stall  {task}"), theme.bad()),
        });
    }
    if !any {
        lines.push(Line::styled("every thread idle", theme.dim()));
    }
    lines
}

/// Seconds with one decimal: `3.2`.
fn seconds(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e9)
}

/// `text` cut or padded to exactly `width` characters.
fn fit(text: &str, width: usize) -> String {
    crate::tui::view::table::fit(text, width, crate::tui::view::table::Align::Left)
}

fn glyph(cell: Cell, theme: Theme) -> Span<'static> {
    match cell {
        Cell::Busy(0) => Span::raw(" "),
        Cell::Busy(1) => Span::raw("░"),
        Cell::Busy(2) => Span::raw("▒"),
        Cell::Busy(3) => Span::raw("▓"),
        Cell::Busy(_) => Span::styled("█", Style::new()),
        Cell::Stalled => Span::styled("!", theme.bad()),
    }
}
