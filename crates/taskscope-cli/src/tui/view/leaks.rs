//! Leaks: tasks with a lost waker, tasks alive at shutdown, and spawn sites by live tasks
//! with a sparkline of their count — the ones the judge says keep rising first.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;

use super::table::{self, Cell, Col};
use crate::duration::human_ns;
use crate::model::LocationId;
use crate::model::growth::Series;
use crate::tui::app::App;

/// Points in a site's sparkline.
const SPARK: usize = 16;
const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let findings = &app.derived.findings;
    let location = area
        .width
        .saturating_sub(11 + 8 + 26 + SPARK as u16 + 4)
        .max(12);
    let cols = [
        Col::left("Leak", 11),
        Col::right("Task/Live", 9),
        Col::left("What", 25),
        Col::left("Trend", SPARK as u16),
        Col::left("Spawned at", location),
    ];
    let tasks: Vec<(u64, bool)> = findings
        .lost_wakers
        .iter()
        .map(|&id| (id, true))
        .chain(findings.alive_at_shutdown.iter().map(|&id| (id, false)))
        .collect();
    let sites = app.shown_sites();
    let len = tasks.len() + sites.len();
    table::render(
        area,
        buf,
        theme,
        &cols,
        None,
        len,
        &app.leaks,
        |index| -> Vec<Cell> {
            match tasks.get(index) {
                Some(&(id, lost)) => task_row(app, id, lost, location),
                None => site_row(app, sites[index - tasks.len()], location),
            }
        },
    );
    if len == 0 {
        table::empty(
            area,
            buf,
            "no leaks: every task can still be woken",
            theme.good(),
        );
    }
}

/// A leaked task: one with a lost waker (`lost`) or one still pending at shutdown.
fn task_row(app: &App, id: u64, lost: bool, location_width: u16) -> Vec<Cell> {
    let model = app.shown();
    let task = model.task(id);
    let what = match task {
        Some(t) if lost => format!(
            "idle {} with 0 wakers",
            human_ns(app.now_ns().saturating_sub(t.stats.last_poll_end_ns))
        ),
        Some(_) => "pending at shutdown".to_owned(),
        None => String::new(),
    };
    let kind = if lost { "lost waker" } else { "at shutdown" };
    let where_ = task.map_or("", |t| model.location(t.location));
    vec![
        (kind.to_owned(), app.theme.bad()),
        (id.to_string(), Style::new()),
        (what, Style::new()),
        (String::new(), Style::new()),
        (
            table::fit_end(where_, usize::from(location_width)),
            Style::new(),
        ),
    ]
}

/// A spawn site by its live tasks, with their trend; the ones the judge says keep growing
/// marked.
fn site_row(app: &App, site: LocationId, location_width: u16) -> Vec<Cell> {
    let theme = app.theme;
    let model = app.shown();
    let (start, end) = (model.since_ns(), app.now_ns());
    let live = model.growth().live(site);
    let growing = app.derived.findings.growing.iter().find(|g| g.site == site);
    let series = model
        .growth()
        .sites()
        .find(|(s, _)| *s == site)
        .map(|(_, s)| s);
    let (kind, what, style) = match growing {
        Some(g) => (
            "growing",
            format!("rose {} → {}", g.from, g.to),
            theme.warn(),
        ),
        None => ("", "live tasks from this site".to_owned(), theme.dim()),
    };
    vec![
        (kind.to_owned(), style),
        (live.to_string(), Style::new()),
        (what, style),
        (
            series.map_or(String::new(), |s| sparkline(s, start, end)),
            style,
        ),
        (
            table::fit_end(model.location(site), usize::from(location_width)),
            Style::new(),
        ),
    ]
}

/// The live count through `[start, end]` as block characters, scaled to its own peak.
pub(crate) fn sparkline(series: &Series, start: u64, end: u64) -> String {
    let span = end.saturating_sub(start);
    let values: Vec<u32> = (0..SPARK)
        .map(|i| series.at(start + span / (SPARK as u64 - 1) * i as u64))
        .collect();
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    values
        .iter()
        .map(|&v| {
            LEVELS[(v as usize * (LEVELS.len() - 1))
                .div_ceil(max as usize)
                .min(7)]
        })
        .collect()
}
