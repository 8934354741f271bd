//! A spawn site's details, for the row of short-lived tasks the probe counted there
//! instead of sending one by one: what they were, what they cost, and why the table does
//! not list them (with the setting that does).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::details::{kind_name, label};
use crate::duration::human_ns;
use crate::model::LocationId;
use crate::model::folded::Folded;
use crate::tui::app::App;
use crate::tui::viewmodel::metrics::grouped;

pub(super) fn render(app: &App, site: LocationId, area: Rect, buf: &mut Buffer) {
    let lines = match app.shown().folded_at(site) {
        Some(tally) => lines(app, site, tally),
        None => vec![Line::styled(
            "no short-lived task was counted at this site at this point (the probe counts \
             them as they end)",
            app.theme.dim(),
        )],
    };
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((app.detail_scroll, 0))
        .render(area, buf);
}

fn lines(app: &App, site: LocationId, tally: &Folded) -> Vec<Line<'static>> {
    let theme = app.theme;
    let model = app.shown();
    let count = |n: u64| grouped(usize::try_from(n).unwrap_or(usize::MAX));
    let each = |total: u64| total / tally.tasks.max(1);
    let threshold = model
        .process()
        .map(|p| p.stall_threshold_ns)
        .filter(|&ns| ns > 0)
        .map_or_else(String::new, |ns| format!(" ({})", human_ns(ns)));
    vec![
        Line::from(vec![
            Span::styled(
                format!("Spawn site {}", model.location(site)),
                theme.title(),
            ),
            Span::raw(format!("  ({}, counted by site)", kind_name(tally.kind))),
        ]),
        Line::from(vec![
            label("Tasks", theme),
            Span::raw(format!("{} short-lived, all completed", count(tally.tasks))),
        ]),
        Line::from(vec![
            label("Polls", theme),
            Span::raw(format!(
                "{} ({:.1} a task)",
                count(tally.polls),
                tally.polls as f64 / tally.tasks.max(1) as f64
            )),
        ]),
        Line::from(vec![
            label("Busy", theme),
            Span::raw(format!(
                "{} in polls ({} a task)",
                human_ns(tally.busy_ns),
                human_ns(each(tally.busy_ns))
            )),
        ]),
        Line::from(vec![
            label("Max poll", theme),
            Span::raw(format!(
                "{}, the longest of any",
                human_ns(tally.max_poll_ns)
            )),
        ]),
        Line::raw(""),
        Line::styled("Why they are not listed one by one", theme.title()),
        Line::raw(format!(
            "The probe counts a spawn site's short-lived tasks instead of sending each one: \
             past the first 64 of the site in an update, a task that was over before the \
             probe took it in, completed, had no name and never polled as long as the stall \
             threshold{threshold} only adds to this tally. None of them stalled, panicked or \
             was cancelled."
        )),
        Line::raw(
            "The first ones of each update are in the table one by one: filter by the \
             location (/) to see them.",
        ),
        Line::styled(
            "To list every task, restart the process with TASKSCOPE_FOLD=off (memory grows \
             with the tasks kept).",
            theme.warn(),
        ),
    ]
}
