//! Drawing: `impl Widget for &App`. The screen is a header, a tab bar, the body (one of
//! the screens) and a footer, with the help or a stack drawn over it. Everything here
//! reads the app; nothing changes it (bar the scroll offsets kept in `Cell`s).

mod awaits;
mod details;
mod header;
pub(crate) mod help;
mod lanes;
mod leaks;
mod resources;
mod runtime;
mod site;
mod stalls;
pub(crate) mod table;
mod tasks;
mod timeline;
mod waiting;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::app::{App, Overlay, Screen, Source};
use super::viewmodel::rows::Column;

/// Where each part of the screen goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Areas {
    pub(crate) header: Rect,
    pub(crate) tabs: Rect,
    pub(crate) body: Rect,
    pub(crate) footer: Rect,
}

/// Splits the terminal; small terminals lose the header's second line, then the header
/// and the footer, before the body shrinks to nothing.
pub(crate) fn layout(area: Rect) -> Areas {
    let header_h = match area.height {
        0..6 => 0,
        6..12 => 1,
        _ => 2,
    };
    let footer_h = u16::from(area.height >= 4);
    let tabs_h = u16::from(area.height >= 3);
    let body_h = area.height.saturating_sub(header_h + tabs_h + footer_h);
    let row = |y: u16, height: u16| Rect::new(area.x, y, area.width, height);
    let header = row(area.y, header_h);
    let tabs = row(header.bottom(), tabs_h);
    let body = row(tabs.bottom(), body_h);
    let footer = row(body.bottom(), footer_h);
    Areas {
        header,
        tabs,
        body,
        footer,
    }
}

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let areas = layout(area);
        header::render(self, areas.header, buf);
        render_tabs(self, areas.tabs, buf);
        match self.screen {
            Screen::Tasks => tasks::render(self, areas.body, buf),
            Screen::Task(id) => details::render(self, id, areas.body, buf),
            Screen::Site(site) => site::render(self, site, areas.body, buf),
            Screen::Stalls => stalls::render(self, areas.body, buf),
            Screen::Leaks => leaks::render(self, areas.body, buf),
            Screen::Runtime => runtime::render(self, areas.body, buf),
            Screen::Waiting => waiting::render(self, areas.body, buf),
            Screen::Resources => resources::render(self, areas.body, buf),
            Screen::Timeline => timeline::render(self, areas.body, buf),
        }
        render_footer(self, areas.footer, buf);
        match self.overlay {
            Overlay::None => {}
            // Over the whole screen: every key and the flags' legend fit an 80×30
            // terminal only without the header and the footer.
            Overlay::Help => help::render_help(self, area, buf),
            Overlay::Stack(stall) => help::render_stack(self, stall, areas.body, buf),
        }
    }
}

/// The label after the tabs naming the task (or spawn site) whose details are open, if
/// they are.
fn open_task_label(app: &App) -> Option<String> {
    match app.screen {
        Screen::Task(id) => Some(format!(" task {id} ")),
        Screen::Site(_) => Some(" spawn site ".to_owned()),
        _ => None,
    }
}

/// Tab labels with their counts, in the widest form whose bar (labels and `│`
/// separators, and the open task's label after them) fits `width` columns, so that every
/// view's key and name stay in sight on an 80-column terminal: padded with counts in
/// parentheses, then unpadded, then with the longer names cut short.
fn tabs(app: &App, width: u16) -> Vec<(Screen, String)> {
    let width = usize::from(width)
        .saturating_sub(open_task_label(app).map_or(0, |label| label.chars().count()));
    let findings = &app.derived.findings;
    let label = |screen: Screen, form: usize| {
        let short = form == 2;
        let (name, count) = match screen {
            Screen::Tasks => ("Tasks", Some(app.derived.counts.total())),
            Screen::Stalls => ("Stalls", Some(findings.stalls_total)),
            Screen::Leaks => ("Leaks", Some(findings.leaks())),
            Screen::Waiting => (if short { "Wait" } else { "Waiting" }, None),
            Screen::Resources => (if short { "Res" } else { "Resources" }, None),
            Screen::Timeline => (if short { "Time" } else { "Timeline" }, None),
            _ => (if short { "Run" } else { "Runtime" }, None),
        };
        match (form, count) {
            (0, Some(count)) => format!("{name} ({count})"),
            (_, Some(count)) => format!("{name} {count}"),
            (_, None) => name.to_owned(),
        }
    };
    let bar = |form: usize| -> Vec<(Screen, String)> {
        Screen::TABS
            .iter()
            .enumerate()
            .map(|(index, &screen)| {
                let label = label(screen, form);
                let text = if form == 0 {
                    format!(" {} {label} ", index + 1)
                } else {
                    format!("{} {label}", index + 1)
                };
                (screen, text)
            })
            .collect()
    };
    let fits = |tabs: &[(Screen, String)]| {
        tabs.iter()
            .map(|(_, l)| l.chars().count() + 1)
            .sum::<usize>()
            <= width
    };
    let mut tabs = bar(0);
    for form in 1..=2 {
        if fits(&tabs) {
            break;
        }
        tabs = bar(form);
    }
    tabs
}

fn render_tabs(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let theme = app.theme;
    let mut spans = Vec::new();
    for (screen, label) in tabs(app, area.width) {
        let style = if screen.tab() == app.screen.tab() {
            theme.active_tab()
        } else {
            match screen {
                Screen::Stalls if app.derived.findings.stalls_now > 0 => theme.bad(),
                Screen::Leaks if app.derived.findings.leaks() > 0 => theme.warn(),
                Screen::Resources => resources::tab_style(app),
                _ => ratatui::style::Style::new(),
            }
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw("│"));
    }
    if let Some(label) = open_task_label(app) {
        spans.push(Span::styled(label, theme.title()));
    }
    buf.set_line(area.x, area.y, &Line::from(spans), area.width);
}

/// The screen a click at column `x` of the tab bar selects.
pub(crate) fn tab_at(app: &App, area: Rect, x: u16) -> Option<Screen> {
    let mut start = area.x;
    for (screen, label) in tabs(app, area.width) {
        // The label and its `│` separator.
        let width = label.chars().count() as u16 + 1;
        if x >= start && x < start.saturating_add(width) {
            return Some(screen);
        }
        start = start.saturating_add(width);
    }
    None
}

fn render_footer(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let theme = app.theme;
    let line = if app.editing_filter {
        Line::from(vec![
            Span::styled("filter: ", theme.title()),
            Span::raw(app.query.filter.clone()),
            Span::styled("▏", theme.title()),
            Span::styled("  Enter keep · Esc clear", theme.dim()),
        ])
    } else if let Some(notice) = &app.notice {
        Line::from(Span::styled(notice.clone(), theme.warn()))
    } else if app.taking_dump {
        Line::from(Span::styled(
            "taking a dump… (the runtime pauses while every task is re-polled)",
            theme.warn(),
        ))
    } else {
        let mut spans = Vec::new();
        if !app.query.filter.is_empty() {
            spans.push(Span::styled(
                format!(
                    "filter \"{}\" ({} rows) ",
                    app.query.filter,
                    app.derived.rows.len()
                ),
                theme.title(),
            ));
        }
        if let Some(key) = &app.query.awaiting {
            spans.push(Span::styled(
                format!("{} ({} rows) ", key.describe(), app.derived.rows.len()),
                theme.title(),
            ));
        }
        let hints = match (&app.source, app.screen) {
            (_, Screen::Timeline) => "+- zoom · ←→ cursor · space pause · ? help · q quit",
            (Source::Replay(_), _) => {
                "space play/pause · ←→ seek · [ ] stalls · +- speed · ? help · q quit"
            }
            (_, Screen::Tasks) => {
                "↑↓ select · Enter details · / filter · s sort · i invert · t tree · ? help · q quit"
            }
            (_, Screen::Task(_)) => "Esc back · ↑↓ scroll · d dump · f frames · ? help · q quit",
            (_, Screen::Site(_)) => "Esc back · ↑↓ scroll · ? help · q quit",
            (_, Screen::Waiting) => "↑↓ select · Enter its tasks · d dump · ? help · q quit",
            (_, Screen::Resources) => "↑↓ select · Enter holder's details · ? help · q quit",
            (_, Screen::Stalls) => "↑↓ select · Enter stack · Tab next view · ? help · q quit",
            _ => "↑↓ select · Enter details · Tab next view · ? help · q quit",
        };
        spans.push(Span::styled(hints, theme.dim()));
        Line::from(spans)
    };
    buf.set_line(area.x, area.y, &line, area.width);
}

/// What a click in the body hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hit {
    /// The table's header row (and the task column under it, if any).
    Header(Option<Column>),
    /// A row, by index in the list.
    Row(usize),
}

/// What is under `(x, y)` in the body of the current screen.
pub(crate) fn body_row_at(app: &App, body: Rect, x: u16, y: u16) -> Option<Hit> {
    let (table, selection, len) = match app.screen {
        Screen::Tasks => (
            tasks::table_area(app, body),
            &app.tasks,
            app.derived.rows.len(),
        ),
        Screen::Stalls => (body, &app.stalls, app.derived.stalls.len()),
        Screen::Leaks => (body, &app.leaks, app.leak_rows()),
        Screen::Runtime => (
            runtime::threads_area(body),
            &app.runtime,
            app.shown().runtime().threads().count(),
        ),
        Screen::Waiting => (
            waiting::table_area(body),
            &app.waits,
            app.derived.waits.len(),
        ),
        Screen::Resources => (
            resources::table_area(app, body),
            &app.resources,
            app.derived.resources.len(),
        ),
        Screen::Task(_) | Screen::Site(_) | Screen::Timeline => return None,
    };
    if !table.contains(ratatui::layout::Position::new(x, y)) {
        return None;
    }
    if y == table.y {
        let column = (app.screen == Screen::Tasks)
            .then(|| tasks::column_at(app, table.width, x - table.x))
            .flatten();
        return Some(Hit::Header(column));
    }
    let index = selection.offset.get() + usize::from(y - table.y - 1);
    (index < len).then_some(Hit::Row(index))
}
