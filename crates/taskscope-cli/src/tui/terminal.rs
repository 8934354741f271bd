//! Taking the terminal over and giving it back: raw mode, the alternate screen and mouse
//! capture on the way in; all of it undone on the way out — on quit, on error (the guard's
//! `Drop`) and on panic (a hook that runs before the panic message is printed, so the
//! message lands on a usable terminal).

use std::io::{self, Stdout};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

/// The terminal while the dashboard owns it.
pub(crate) struct Guard {
    pub(crate) terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Guard {
    pub(crate) fn enter() -> io::Result<Self> {
        // Sets raw mode and the alternate screen, and chains a panic hook that undoes them.
        let terminal = ratatui::try_init()?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = crossterm::execute!(io::stdout(), DisableMouseCapture);
            previous(info);
        }));
        if let Err(error) = crossterm::execute!(io::stdout(), EnableMouseCapture) {
            restore();
            return Err(error);
        }
        Ok(Self { terminal })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

fn restore() {
    let _ = crossterm::execute!(io::stdout(), DisableMouseCapture);
    ratatui::restore();
}
