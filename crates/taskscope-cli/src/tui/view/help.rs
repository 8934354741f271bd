//! Overlays: the help listing every key, and the full stack of a stall.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use crate::duration::human_ns;
use crate::model::stall::shown_frames;
use crate::tui::app::App;
use crate::tui::keys::KEY_HELP;
use crate::tui::viewmodel::findings::Flags;

/// What the mouse does, below the keys.
const MOUSE: (&str, &str) = (
    "mouse",
    "click selects (again: opens), sorts, switches tabs",
);

/// The flags of the task table, in words and in the letters of a narrow terminal.
const FLAG_LEGEND: [(&str, &str); 7] = [
    (
        "Flags (letter):",
        "in one letter where the terminal is narrow",
    ),
    (
        "STALL 1.0s (S s)",
        "stalled its thread this long, now (S) or before (s)",
    ),
    ("DEADLOCK (D)", "waits in a cycle of waits"),
    ("LOST WAKER (W)", "nothing can ever wake it"),
    ("LEAKED (A)", "alive when its runtime shut down"),
    ("PANIC (P)", "panicked"),
    ("cancelled (c)", "aborted, or dropped by a JoinSet"),
];

/// The help's rows: every key (from [`KEY_HELP`]), the mouse, then the flags' legend,
/// whose heading sets it apart (no blank row: every row fits an 80×30 terminal).
pub(crate) fn help_rows() -> Vec<(&'static str, &'static str)> {
    let keys = KEY_HELP.iter().map(|row| (row.keys, row.does));
    keys.chain([MOUSE]).chain(FLAG_LEGEND).collect()
}

/// A box centred in `area`, at most `width` × `height`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub(super) fn render_help(app: &App, area: Rect, buf: &mut Buffer) {
    debug_assert_eq!(Flags::GLYPHS.len(), FLAG_LEGEND.len());
    let theme = app.theme;
    let rows = help_rows();
    let key_width = rows.iter().map(|(key, _)| width(key)).max().unwrap_or(0);
    let lines: Vec<Line> = rows
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!("{key:>key_width$}  "), theme.title()),
                Span::raw(*what),
            ])
        })
        .collect();
    let text_width = lines.iter().map(Line::width).max().unwrap_or(0);
    let rect = centered(area, text_width as u16 + 2, lines.len() as u16 + 2);
    Clear.render(rect, buf);
    Paragraph::new(lines)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" keys (any key closes) "),
        )
        .render(rect, buf);
}

/// Columns `text` takes (its characters: the keys' arrows are one column each).
fn width(text: &str) -> usize {
    text.chars().count()
}

pub(super) fn render_stack(app: &App, stall_id: u64, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let model = app.shown();
    let Some(stall) = model.stalls().find(|s| s.stall_id == stall_id) else {
        return;
    };
    let mut lines = vec![Line::raw(format!(
        "task {} on {} for {}",
        stall.task_id,
        model.runtime().thread_name(stall.thread),
        human_ns(stall.duration_at(app.now_ns()))
    ))];
    if stall.stack.is_empty() {
        lines.push(Line::styled(
            "no stack was captured (the platform or the probe's settings did not allow it)",
            theme.dim(),
        ));
    }
    let shown = shown_frames(&stall.stack);
    let folded = stall.stack.len() - shown.len();
    if app.all_frames {
        for frame in &stall.stack {
            let line = super::details::frame_line(frame, theme);
            lines.push(if shown.contains(frame) {
                line
            } else {
                line.style(theme.dim())
            });
        }
    } else {
        for frame in &shown {
            lines.push(super::details::frame_line(frame, theme));
        }
    }
    if folded > 0 {
        let what = if app.all_frames {
            format!("    (f folds the {folded} frames of the runtime and the standard library)")
        } else {
            format!("    … {folded} frames of the runtime and the standard library (f shows them)")
        };
        lines.push(Line::styled(what, theme.dim()));
    }
    let rect = centered(
        area,
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    if let Some(lanes) = &stall.lanes {
        let width = usize::from(rect.width.saturating_sub(2));
        lines.extend(super::lanes::lines(lanes, stall.thread, width, theme));
    }
    Clear.render(rect, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::default().borders(Borders::ALL).title(format!(
            " stall #{stall_id}, innermost frame first (Esc closes) "
        )))
        .render(rect, buf);
}
