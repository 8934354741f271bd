//! Stalls: the ones going on first, their duration ticking, then the history; Enter shows
//! the captured stack.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;

use super::table::{self, Cell, Col};
use crate::duration::human_ns;
use crate::model::stall::{Phase, Stall};
use crate::tui::app::App;
use crate::tui::viewmodel::metrics::clock;

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let model = app.shown();
    let fixed = 4 + 6 + 7 + 9 + 9 + 16 + 6;
    let location = area.width.saturating_sub(fixed + 8).max(12);
    let cols = [
        Col::left("", 4),
        Col::right("Stall", 6),
        Col::right("Task", 7),
        Col::right("Duration", 9),
        Col::right("Started", 9),
        Col::left("Thread", 16),
        Col::left("Stack", 6),
        Col::left("Spawned at", location),
    ];
    let ids = &app.derived.stalls;
    table::render(
        area,
        buf,
        theme,
        &cols,
        None,
        ids.len(),
        &app.stalls,
        |index| match model.stalls().find(|s| s.stall_id == ids[index]) {
            Some(stall) => stall_row(app, stall, location),
            None => vec![(String::new(), Style::new()); cols.len()],
        },
    );
    if ids.is_empty() {
        table::empty(
            area,
            buf,
            "no stalls: no poll has blocked a thread past the threshold",
            theme.good(),
        );
    }
}

/// One stall: `NOW` and red while it goes on, its task, duration, start, thread, whether a
/// stack was captured, and where its task was spawned.
fn stall_row(app: &App, stall: &Stall, location_width: u16) -> Vec<Cell> {
    let theme = app.theme;
    let model = app.shown();
    let task = model.task(stall.task_id);
    let ongoing = stall.phase == Phase::Ongoing;
    let (marker, style) = if ongoing {
        ("NOW", theme.bad())
    } else {
        ("", theme.warn())
    };
    let spawned_at = task.map_or(crate::model::UNKNOWN_LOCATION, |t| {
        model.location(t.location)
    });
    vec![
        (marker.to_owned(), theme.bad()),
        (stall.stall_id.to_string(), Style::new()),
        (stall.task_id.to_string(), Style::new()),
        (human_ns(stall.duration_at(app.now_ns())), style),
        (clock(stall.poll_started_ns), Style::new()),
        (model.runtime().thread_name(stall.thread), Style::new()),
        (
            if stall.stack.is_empty() { "-" } else { "yes" }.to_owned(),
            theme.dim(),
        ),
        (
            table::fit_end(spawned_at, usize::from(location_width)),
            Style::new(),
        ),
    ]
}
