//! Colours, and their absence: with `NO_COLOR` set every style keeps only its modifiers
//! (bold, reversed), so nothing the dashboard says depends on colour alone.

use ratatui::style::{Color, Modifier, Style};

/// The styles the views use, by meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Theme {
    color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to anything non-empty (no-color.org).
    pub(crate) fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self { color: !no_color }
    }

    /// No colour at all, whatever the environment says: what snapshot tests draw with.
    #[cfg(test)]
    pub(crate) fn plain() -> Self {
        Self { color: false }
    }

    fn paint(self, color: Color, modifier: Modifier) -> Style {
        let style = Style::new().add_modifier(modifier);
        if self.color { style.fg(color) } else { style }
    }

    /// Something wrong now: a stall going on, a lost waker, a dropped event.
    pub(crate) fn bad(self) -> Style {
        self.paint(Color::Red, Modifier::BOLD)
    }

    /// Something that was wrong, or may be: a past stall, a panic, growth.
    pub(crate) fn warn(self) -> Style {
        self.paint(Color::Yellow, Modifier::empty())
    }

    pub(crate) fn good(self) -> Style {
        self.paint(Color::Green, Modifier::empty())
    }

    /// Less important text: ended tasks, hints.
    pub(crate) fn dim(self) -> Style {
        self.paint(Color::DarkGray, Modifier::empty())
    }

    pub(crate) fn title(self) -> Style {
        self.paint(Color::Cyan, Modifier::BOLD)
    }

    /// Column headers.
    pub(crate) fn header(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    /// The selected row.
    pub(crate) fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// The active tab.
    pub(crate) fn active_tab(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }

    /// A banner that must not be missed (uninstrumented target, dropped events).
    pub(crate) fn alarm(self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }
}
