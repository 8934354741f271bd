//! Waiting: every live task grouped by the `.await` in the user's code it is parked on,
//! the most crowded first, from the latest dumps; then the tasks no dump placed. Enter
//! lists a row's tasks in the task table.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;

use super::table::{self, Cell, Col};
use crate::duration::human_ns;
use crate::model::names::{short_call, short_function};
use crate::tui::app::App;
use crate::tui::theme::Theme;
use crate::tui::viewmodel::metrics::grouped;
use crate::tui::viewmodel::waits::{Group, WaitKey};

/// Lines above the table: the latest dump's facts, and a blank.
const ABOVE: u16 = 2;

/// Where the table of groups is drawn in the body.
pub(super) fn table_area(body: Rect) -> Rect {
    let above = ABOVE.min(body.height);
    Rect::new(body.x, body.y + above, body.width, body.height - above)
}

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let theme = app.theme;
    let (facts, style) = match super::awaits::why_no_dump(app) {
        Some(why) => (why, theme.dim()),
        None => latest_facts(app),
    };
    buf.set_line(area.x, area.y, &Line::styled(facts, style), area.width);
    let groups = &app.derived.waits;
    let area = table_area(area);
    let function = 22;
    // Location and what is awaited share what the count and the function leave.
    let location = (area.width.saturating_sub(8 + function + 3) / 2).clamp(12, 30);
    let awaited = area
        .width
        .saturating_sub(8 + location + function + 3)
        .max(8);
    let cols = [
        Col::right("Tasks", 8),
        Col::left("Waiting at", location),
        Col::left("In", function),
        Col::left("Awaiting", awaited),
    ];
    table::render(
        area,
        buf,
        theme,
        &cols,
        None,
        groups.len(),
        &app.waits,
        |index| cells(&groups[index], usize::from(location), theme),
    );
    if groups.is_empty() && app.shown().waiting().latest().is_some() {
        table::empty(area, buf, "no live tasks", theme.dim());
    }
}

/// One group's row; `location` is the width of its column.
fn cells(group: &Group, location: usize, theme: Theme) -> Vec<Cell> {
    let count = (grouped(group.tasks), Style::new());
    let (at, function, awaited) = match &group.key {
        WaitKey::At {
            location: at,
            function,
        } => (
            (table::fit_end(at, location), theme.title()),
            short_function(function).to_owned(),
            group.awaited.as_deref().map(short_call).unwrap_or_default(),
        ),
        WaitKey::Elsewhere => (
            ("outside your code".to_owned(), theme.dim()),
            String::new(),
            "no frame of their chains is yours".to_owned(),
        ),
        WaitKey::NoChain => (
            ("no chain".to_owned(), theme.dim()),
            String::new(),
            "not in any dump (details say why)".to_owned(),
        ),
    };
    vec![count, at, (function, Style::new()), (awaited, theme.dim())]
}

/// "latest dump 3.2s ago (00:07.0), at shutdown: 1,000 tasks, the runtime held 1.2ms".
fn latest_facts(app: &App) -> (String, Style) {
    let theme = app.theme;
    let Some(latest) = app.shown().waiting().latest() else {
        return (String::new(), Style::new());
    };
    let age = super::awaits::age(app, latest.taken_ns, latest.trigger);
    if let Some(skipped) = &latest.skipped {
        return (
            format!("the latest dump, {age}, was skipped: {skipped}"),
            theme.warn(),
        );
    }
    let left_out = match latest.left_out {
        0 => String::new(),
        n => format!(", {} left out at its size limit", grouped(n as usize)),
    };
    (
        format!(
            "latest dump {}: {} tasks{left_out}, the runtime held {}",
            age.trim_start_matches("as of "),
            grouped(latest.chains),
            human_ns(latest.pause_ns)
        ),
        Style::new(),
    )
}
