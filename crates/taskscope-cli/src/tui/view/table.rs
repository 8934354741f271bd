//! A plain table drawn straight into the buffer: a header row, then only the rows that fit,
//! the selected one highlighted. Callers hand over the visible rows only, which is what
//! keeps a 100k-row table as cheap to draw as a 20-row one.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::tui::theme::Theme;
use crate::tui::viewmodel::selection::Selection;

/// How a column's text sits in its cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// One column: its title, width and alignment.
#[derive(Clone, Debug)]
pub(crate) struct Col {
    pub(crate) title: String,
    pub(crate) width: u16,
    pub(crate) align: Align,
}

impl Col {
    pub(crate) fn left(title: impl Into<String>, width: u16) -> Self {
        Self {
            title: title.into(),
            width,
            align: Align::Left,
        }
    }

    pub(crate) fn right(title: impl Into<String>, width: u16) -> Self {
        Self {
            title: title.into(),
            width,
            align: Align::Right,
        }
    }
}

/// A cell: text and style.
pub(crate) type Cell = (String, Style);

/// Fits `text` into `width` columns: cut with `…` when too long, padded otherwise.
pub(crate) fn fit(text: &str, width: usize, align: Align) -> String {
    let count = text.chars().count();
    if count > width {
        if width == 0 {
            return String::new();
        }
        // Locations are most telling at their end (file:line), names at their start.
        return match align {
            Align::Left => {
                let mut cut: String = text.chars().take(width - 1).collect();
                cut.push('…');
                cut
            }
            Align::Right => {
                let mut cut = String::from("…");
                cut.extend(text.chars().skip(count - (width - 1)));
                cut
            }
        };
    }
    let pad = " ".repeat(width - count);
    match align {
        Align::Left => format!("{text}{pad}"),
        Align::Right => format!("{pad}{text}"),
    }
}

/// Cuts a path-like text from the left (`…rc/main.rs:12:5`), keeping its end.
pub(crate) fn fit_end(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return fit(text, width, Align::Left);
    }
    fit(text, width, Align::Right)
}

/// One row as a line: cells separated by a space.
pub(crate) fn line(cols: &[Col], cells: Vec<Cell>) -> Line<'static> {
    let mut spans = Vec::with_capacity(cols.len() * 2);
    for (index, (col, (text, style))) in cols.iter().zip(cells).enumerate() {
        if index > 0 {
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(
            fit(&text, usize::from(col.width), col.align),
            style,
        ));
    }
    Line::from(spans)
}

/// Draws the header and rows `[from, from + height)` that `row` produces. `marked` is
/// the header column shown as the sort column.
#[allow(
    clippy::too_many_arguments,
    reason = "a table really has this many parts"
)]
pub(crate) fn render(
    area: Rect,
    buf: &mut Buffer,
    theme: Theme,
    cols: &[Col],
    marked: Option<(usize, bool)>,
    len: usize,
    selection: &Selection,
    mut row: impl FnMut(usize) -> Vec<Cell>,
) {
    if area.height == 0 {
        return;
    }
    let header: Vec<Cell> = cols
        .iter()
        .enumerate()
        .map(|(index, col)| {
            let title = match marked {
                Some((sorted, descending)) if sorted == index => {
                    format!("{}{}", col.title, if descending { "▼" } else { "▲" })
                }
                _ => col.title.clone(),
            };
            (title, theme.header())
        })
        .collect();
    buf.set_line(area.x, area.y, &line(cols, header), area.width);
    let height = usize::from(area.height - 1);
    let from = selection.visible_from(height, len);
    for (screen_row, index) in (from..len.min(from + height)).enumerate() {
        let y = area.y + 1 + screen_row as u16;
        let line = line(cols, row(index));
        buf.set_line(area.x, y, &line, area.width);
        if index == selection.index {
            buf.set_style(Rect::new(area.x, y, area.width, 1), theme.selected());
        }
    }
}

/// A centred one-line message in an empty area (no rows yet, nothing found).
pub(crate) fn empty(area: Rect, buf: &mut Buffer, text: &str, style: Style) {
    if area.height < 2 {
        return;
    }
    let y = area.y + 1 + (area.height - 1) / 3;
    let width = text.chars().count() as u16;
    let x = area.x + area.width.saturating_sub(width) / 2;
    buf.set_line(x, y, &Line::styled(text.to_owned(), style), area.width);
}
