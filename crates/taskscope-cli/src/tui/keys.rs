//! Input: keys and the mouse become [`Action`]s, actions change the [`App`] and return an
//! [`Outcome`] for the loop (which does the I/O: quitting restores the terminal).

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use super::app::{App, Overlay, Screen, Source};
use super::view;
use super::viewmodel::rows::{Column, Item};

/// What the loop should do after an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Continue,
    Quit,
    /// Ask the live probe for a dump (the answer comes back through the link).
    TakeDump,
}

/// Everything a key can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Quit,
    Help,
    /// Close the overlay, leave details, or clear the filter.
    Back,
    Show(Screen),
    NextTab,
    PrevTab,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Enter: details of the selected row.
    Open,
    Filter,
    SortNext,
    SortPrev,
    SortBy(Column),
    Invert,
    Tree,
    Pause,
    Faster,
    Slower,
    /// Replay: move by this many seconds.
    Seek(i64),
    PrevStall,
    NextStall,
    /// In a stall's stack or an await chain: show the runtime's frames too, or fold them.
    AllFrames,
    /// Ask the live probe where every task is waiting.
    TakeDump,
}

/// One row of the key help: keys as the help and the docs write them (alternatives
/// separated by `, `, keys within one by spaces) and what they do.
pub(crate) struct KeyHelp {
    pub(crate) keys: &'static str,
    pub(crate) does: &'static str,
}

/// Every key the dashboard binds, grouped: the one source of the key help. The help
/// overlay renders it and `docs/dashboard.md`'s key table must be exactly it; the tests
/// hold it to [`action`] both ways (every key named is bound, every bound key is named).
/// Rows fit an 80-column help overlay.
pub(crate) const KEY_HELP: &[KeyHelp] = &[
    KeyHelp {
        keys: "1 2 3 4",
        does: "Tasks, Stalls, Leaks, Runtime",
    },
    KeyHelp {
        keys: "5 6 7",
        does: "Waiting, Resources, Timeline",
    },
    KeyHelp {
        keys: "Tab, Shift-Tab",
        does: "the next/previous view",
    },
    KeyHelp {
        keys: "↑ ↓, j k",
        does: "select a row (scroll in details)",
    },
    KeyHelp {
        keys: "PgUp PgDn, Ctrl-B Ctrl-F",
        does: "a page up/down",
    },
    KeyHelp {
        keys: "g G, Home End",
        does: "first/last row",
    },
    KeyHelp {
        keys: "Enter",
        does: "a task's details, a stall's stack, a row's tasks",
    },
    KeyHelp {
        keys: "Esc, Backspace",
        does: "close, leave the details, or clear the filter",
    },
    KeyHelp {
        keys: "/",
        does: "filter tasks by name, location or state",
    },
    KeyHelp {
        keys: "s, S, i",
        does: "sort by the next/previous column; invert the sort",
    },
    KeyHelp {
        keys: "t",
        does: "tree of parents and children",
    },
    KeyHelp {
        keys: "space, p",
        does: "live: pause the display; replay: play/pause",
    },
    KeyHelp {
        keys: "+ =, -",
        does: "replay: speed (⅛× to 32×); Timeline: zoom",
    },
    KeyHelp {
        keys: "← →, h l, Shift-← Shift-→",
        does: "replay: seek 1 s (Shift: 10); Timeline: cursor",
    },
    KeyHelp {
        keys: "[ ]",
        does: "replay: jump to the previous/next stall, paused",
    },
    KeyHelp {
        keys: "f",
        does: "stacks and await chains: every frame, or yours",
    },
    KeyHelp {
        keys: "d",
        does: "live: dump where every task is waiting",
    },
    KeyHelp {
        keys: "?, F1",
        does: "this help (any key closes it)",
    },
    KeyHelp {
        keys: "q, Ctrl-C",
        does: "quit",
    },
];

/// The action a key stands for outside the filter input.
pub(crate) fn action(key: KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let shift = key.modifiers.contains(KeyModifiers::SHIFT);
    Some(match key.code {
        KeyCode::Char('c') if ctrl => Action::Quit,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') | KeyCode::F(1) => Action::Help,
        KeyCode::Esc | KeyCode::Backspace => Action::Back,
        KeyCode::Char('1') => Action::Show(Screen::Tasks),
        KeyCode::Char('2') => Action::Show(Screen::Stalls),
        KeyCode::Char('3') => Action::Show(Screen::Leaks),
        KeyCode::Char('4') => Action::Show(Screen::Runtime),
        KeyCode::Char('5') => Action::Show(Screen::Waiting),
        KeyCode::Char('6') => Action::Show(Screen::Resources),
        KeyCode::Char('7') => Action::Show(Screen::Timeline),
        KeyCode::Tab => Action::NextTab,
        KeyCode::BackTab => Action::PrevTab,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Char('b') if ctrl => Action::PageUp,
        KeyCode::Char('f') if ctrl => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Top,
        KeyCode::End | KeyCode::Char('G') => Action::Bottom,
        KeyCode::Enter => Action::Open,
        KeyCode::Char('/') => Action::Filter,
        KeyCode::Char('s') => Action::SortNext,
        KeyCode::Char('S') => Action::SortPrev,
        KeyCode::Char('i') => Action::Invert,
        KeyCode::Char('t') => Action::Tree,
        KeyCode::Char(' ') | KeyCode::Char('p') => Action::Pause,
        KeyCode::Char('+') | KeyCode::Char('=') => Action::Faster,
        KeyCode::Char('-') => Action::Slower,
        KeyCode::Left if shift => Action::Seek(-10),
        KeyCode::Right if shift => Action::Seek(10),
        KeyCode::Left | KeyCode::Char('h') => Action::Seek(-1),
        KeyCode::Right | KeyCode::Char('l') => Action::Seek(1),
        KeyCode::Char('[') => Action::PrevStall,
        KeyCode::Char(']') => Action::NextStall,
        KeyCode::Char('f') => Action::AllFrames,
        KeyCode::Char('d') => Action::TakeDump,
        _ => return None,
    })
}

impl App {
    /// Handles a key press (releases and repeats of other kinds are ignored).
    pub(crate) fn on_key(&mut self, key: KeyEvent) -> Outcome {
        if key.kind == KeyEventKind::Release {
            return Outcome::Continue;
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return Outcome::Quit;
        }
        if key.modifiers.contains(KeyModifiers::ALT) {
            // Esc and the next key arriving in one read (a fast typist, a slow link)
            // reach us as Alt+key. The dashboard binds no Alt keys, so this is always
            // what was typed: Esc, then the key.
            let escape = KeyEvent::new_with_kind(KeyCode::Esc, KeyModifiers::NONE, key.kind);
            let plain =
                KeyEvent::new_with_kind(key.code, key.modifiers - KeyModifiers::ALT, key.kind);
            return match self.on_key(escape) {
                Outcome::Quit => Outcome::Quit,
                Outcome::Continue | Outcome::TakeDump => self.on_key(plain),
            };
        }
        if self.editing_filter {
            self.edit_filter(key);
            return Outcome::Continue;
        }
        match action(key) {
            Some(action) => self.perform(action),
            None => Outcome::Continue,
        }
    }

    fn edit_filter(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Enter => self.editing_filter = false,
            KeyCode::Esc => {
                self.editing_filter = false;
                self.query.filter.clear();
            }
            KeyCode::Backspace => {
                self.query.filter.pop();
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.query.filter.clear();
            }
            KeyCode::Char(c) if !c.is_control() => self.query.filter.push(c),
            _ => return,
        }
        self.rows_changed();
    }

    /// Does what `action` asks.
    pub(crate) fn perform(&mut self, action: Action) -> Outcome {
        if action != Action::Help && self.overlay == Overlay::Help {
            // Any key closes help (and quitting still quits).
            self.overlay = Overlay::None;
            if action != Action::Quit {
                return Outcome::Continue;
            }
        }
        self.notice = None;
        match action {
            Action::Quit => return Outcome::Quit,
            Action::Help => {
                self.overlay = match self.overlay {
                    Overlay::Help => Overlay::None,
                    _ => Overlay::Help,
                }
            }
            Action::Back => self.back(),
            Action::Show(screen) => self.show(screen),
            Action::NextTab => {
                self.show(Screen::TABS[(self.screen.tab() + 1) % Screen::TABS.len()])
            }
            Action::PrevTab => {
                let tabs = Screen::TABS.len();
                self.show(Screen::TABS[(self.screen.tab() + tabs - 1) % tabs])
            }
            Action::Up => self.step(-1),
            Action::Down => self.step(1),
            Action::PageUp => self.step(-(self.page() as isize)),
            Action::PageDown => self.step(self.page() as isize),
            Action::Top => self.step(isize::MIN / 2),
            Action::Bottom => self.step(isize::MAX / 2),
            Action::Open => self.open(),
            Action::Filter => {
                self.show(Screen::Tasks);
                self.editing_filter = true;
            }
            Action::SortNext => self.sort_by(self.query.sort.column.next(), false),
            Action::SortPrev => self.sort_by(self.query.sort.column.prev(), false),
            Action::SortBy(column) => self.sort_by(column, true),
            Action::Invert => {
                self.query.sort.inverted = !self.query.sort.inverted;
                self.rows_changed();
            }
            Action::Tree => {
                self.query.tree = !self.query.tree;
                self.rows_changed();
            }
            Action::Pause => self.toggle_pause(),
            Action::Faster if self.screen == Screen::Timeline => self.timeline.zoom(true),
            Action::Slower if self.screen == Screen::Timeline => self.timeline.zoom(false),
            Action::Seek(secs) if self.screen == Screen::Timeline => {
                self.timeline.move_cursor(-secs)
            }
            Action::Faster | Action::Slower | Action::Seek(_) => self.move_replay(action),
            Action::PrevStall => self.jump(false),
            Action::NextStall => self.jump(true),
            Action::AllFrames => {
                if matches!(self.overlay, Overlay::Stack(_))
                    || matches!(self.screen, Screen::Task(_))
                {
                    self.all_frames = !self.all_frames;
                }
            }
            Action::TakeDump => return self.take_dump(),
        }
        Outcome::Continue
    }

    /// Replay: faster, slower, or a seek (nothing on a live source).
    fn move_replay(&mut self, action: Action) {
        self.with_player(|player, model| {
            match action {
                Action::Faster => player.faster(),
                Action::Slower => player.slower(),
                Action::Seek(secs) => player.seek_by(secs.saturating_mul(1_000_000_000), model),
                _ => {}
            }
            true
        });
    }

    fn jump(&mut self, forward: bool) {
        if !matches!(self.source, Source::Replay(_)) {
            return;
        }
        let found = self.with_player(|player, model| {
            if forward {
                player.next_stall(model)
            } else {
                player.prev_stall(model)
            }
        });
        if !found {
            let which = if forward { "after" } else { "before" };
            self.notice = Some(format!("no stall {which} this point of the recording"));
        }
    }

    fn sort_by(&mut self, column: Column, invert_if_same: bool) {
        if self.query.sort.column == column && invert_if_same {
            self.query.sort.inverted = !self.query.sort.inverted;
        } else {
            self.query.sort.column = column;
            self.query.sort.inverted = false;
        }
        self.show(Screen::Tasks);
        self.rows_changed();
    }

    fn back(&mut self) {
        if self.overlay != Overlay::None {
            self.overlay = Overlay::None;
        } else if let Screen::Task(_) | Screen::Site(_) = self.screen {
            self.screen = self.previous;
        } else if !self.query.filter.is_empty() || self.query.awaiting.is_some() {
            self.query.filter.clear();
            self.query.awaiting = None;
            self.rows_changed();
        }
    }

    fn show(&mut self, screen: Screen) {
        self.overlay = Overlay::None;
        if let Screen::Task(_) | Screen::Site(_) = screen {
            self.detail_scroll = 0;
            if !matches!(self.screen, Screen::Task(_) | Screen::Site(_)) {
                self.previous = self.screen;
            }
        }
        let to_waiting = screen == Screen::Waiting && self.screen != Screen::Waiting;
        self.screen = screen;
        if to_waiting {
            self.refresh_waits();
        }
    }

    /// Rows a page moves: the body's height less its header row.
    fn page(&self) -> usize {
        usize::from(view::layout(self.size).body.height.saturating_sub(2)).max(1)
    }

    fn step(&mut self, delta: isize) {
        match self.screen {
            Screen::Tasks => {
                self.tasks.step(delta, self.derived.rows.len());
                self.selected = self.derived.rows.get(self.tasks.index).map(|r| r.item);
            }
            Screen::Task(_) | Screen::Site(_) => {
                let scroll = (self.detail_scroll as isize).saturating_add(delta);
                self.detail_scroll = scroll.clamp(0, (u16::MAX / 2) as isize) as u16;
            }
            Screen::Stalls => self.stalls.step(delta, self.derived.stalls.len()),
            Screen::Leaks => self.leaks.step(delta, self.leak_rows()),
            Screen::Runtime => {
                let threads = self.shown().runtime().threads().count();
                self.runtime.step(delta, threads);
            }
            Screen::Waiting => self.waits.step(delta, self.derived.waits.len()),
            Screen::Resources => self.resources.step(delta, self.derived.resources.len()),
            Screen::Timeline => {}
        }
    }

    fn open(&mut self) {
        match self.screen {
            Screen::Tasks => match self.selected {
                Some(Item::Task(id)) => self.show(Screen::Task(id)),
                Some(Item::Site(site)) => self.show(Screen::Site(site)),
                None => {}
            },
            Screen::Stalls => {
                if let Some(&stall) = self.derived.stalls.get(self.stalls.index) {
                    self.overlay = Overlay::Stack(stall);
                    self.all_frames = false;
                }
            }
            Screen::Leaks => {
                let findings = &self.derived.findings;
                let task = findings
                    .lost_wakers
                    .iter()
                    .chain(&findings.alive_at_shutdown)
                    .nth(self.leaks.index)
                    .copied();
                let tasks = findings.lost_wakers.len() + findings.alive_at_shutdown.len();
                if let Some(id) = task {
                    self.show(Screen::Task(id));
                } else if let Some(&site) = self.shown_sites().get(self.leaks.index - tasks) {
                    // A spawn site: its tasks, in the table.
                    self.query.filter = self.shown().location(site).to_owned();
                    self.rows_changed();
                    self.show(Screen::Tasks);
                }
            }
            Screen::Runtime => {
                let polling = self
                    .shown()
                    .runtime()
                    .threads()
                    .nth(self.runtime.index)
                    .map(|(_, thread)| thread.polling_task)
                    .filter(|&id| id != 0);
                if let Some(id) = polling {
                    self.show(Screen::Task(id));
                }
            }
            Screen::Waiting => {
                if let Some(group) = self.derived.waits.get(self.waits.index) {
                    // Its tasks, in the table, where they can be sorted and opened.
                    self.query.awaiting = Some(group.key.clone());
                    self.rows_changed();
                    self.show(Screen::Tasks);
                }
            }
            Screen::Resources => {
                let holder = self.derived.resources.get(self.resources.index);
                if let Some(id) = holder.and_then(|row| row.holder_task()) {
                    self.show(Screen::Task(id));
                }
            }
            Screen::Task(_) | Screen::Site(_) | Screen::Timeline => {}
        }
    }

    /// Clicks select (a second click on the selected row opens it), clicks on the tab
    /// bar switch screens, clicks on the task table's header sort, the wheel scrolls.
    pub(crate) fn on_mouse(&mut self, mouse: MouseEvent) -> Outcome {
        let areas = view::layout(self.size);
        let (x, y) = (mouse.column, mouse.row);
        match mouse.kind {
            MouseEventKind::ScrollDown => self.step(3),
            MouseEventKind::ScrollUp => self.step(-3),
            MouseEventKind::Down(MouseButton::Left) => {
                if y == areas.tabs.y {
                    if let Some(screen) = view::tab_at(self, areas.tabs, x) {
                        self.show(screen);
                    }
                } else if self.overlay != Overlay::None {
                    self.overlay = Overlay::None;
                } else if let Some(target) = view::body_row_at(self, areas.body, x, y) {
                    match target {
                        view::Hit::Header(Some(column)) => {
                            return self.perform(Action::SortBy(column));
                        }
                        view::Hit::Header(None) => {}
                        view::Hit::Row(index) => self.click_row(index),
                    }
                }
            }
            _ => {}
        }
        Outcome::Continue
    }

    fn click_row(&mut self, index: usize) {
        let selection = match self.screen {
            Screen::Tasks => &mut self.tasks,
            Screen::Stalls => &mut self.stalls,
            Screen::Leaks => &mut self.leaks,
            Screen::Runtime => &mut self.runtime,
            Screen::Waiting => &mut self.waits,
            Screen::Resources => &mut self.resources,
            Screen::Task(_) | Screen::Site(_) | Screen::Timeline => return,
        };
        if selection.index == index {
            self.open();
            return;
        }
        selection.index = index;
        if self.screen == Screen::Tasks {
            self.tasks.clamp(self.derived.rows.len());
            self.selected = self.derived.rows.get(self.tasks.index).map(|r| r.item);
        }
    }
}
