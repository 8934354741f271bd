//! The stall overlay's timeline: a strip per thread over the flight-recorder window, so
//! that what ran on each worker before the stall, and what did not, shows at a glance.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::duration::human_ns;
use crate::model::lanes::{COLUMNS, Cell, Lanes};
use crate::tui::theme::Theme;

/// Width of the thread names before the strips.
const LABEL: usize = 22;

/// The timeline's lines for a strip `width` columns wide (at most the recorded columns).
pub(super) fn lines(
    lanes: &Lanes,
    stall_thread: u32,
    width: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    // Room for "N events lost" after a strip whose ring overflowed.
    let lost = if lanes.lanes.iter().any(|l| l.overflowed > 0) {
        18
    } else {
        0
    };
    let width = width.saturating_sub(LABEL + 1 + lost).clamp(1, COLUMNS);
    let span = lanes.to_ns.saturating_sub(lanes.from_ns);
    let mut lines = vec![
        Line::raw(""),
        Line::raw(format!(
            "what each thread ran over the {} up to the stall's end (one column: {})",
            human_ns(span),
            human_ns(span / width as u64)
        )),
    ];
    for lane in &lanes.lanes {
        let marker = if lane.thread == stall_thread {
            "▶"
        } else {
            " "
        };
        let mut label = format!("{marker}#{} {}", lane.thread, lane.name);
        if label.chars().count() > LABEL {
            label = label.chars().take(LABEL - 1).collect::<String>() + "…";
        }
        let mut spans = vec![Span::raw(format!("{label:<LABEL$} "))];
        for column in 0..width {
            // The busiest recorded column this screen column covers.
            let from = column * COLUMNS / width;
            let to = ((column + 1) * COLUMNS / width).max(from + 1);
            let cell = lane.cells[from..to]
                .iter()
                .copied()
                .max_by_key(|c| rank(*c))
                .unwrap_or(Cell::Idle);
            spans.push(glyph(cell, theme));
        }
        if lane.overflowed > 0 {
            spans.push(Span::styled(
                format!(" {} events lost", lane.overflowed),
                theme.warn(),
            ));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::styled(
        format!(
            "{:LABEL$} █ the stalled task  ▓ busy  ░ some polls  · idle  (blank: left out)",
            ""
        ),
        theme.dim(),
    ));
    lines
}

fn rank(cell: Cell) -> u8 {
    match cell {
        Cell::LeftOut => 0,
        Cell::Idle => 1,
        Cell::Some => 2,
        Cell::Busy => 3,
        Cell::Stalled => 4,
    }
}

fn glyph(cell: Cell, theme: Theme) -> Span<'static> {
    match cell {
        Cell::LeftOut => Span::raw(" "),
        Cell::Idle => Span::styled("·", theme.dim()),
        Cell::Some => Span::styled("░", Style::new()),
        Cell::Busy => Span::styled("▓", Style::new()),
        Cell::Stalled => Span::styled("█", theme.bad()),
    }
}
