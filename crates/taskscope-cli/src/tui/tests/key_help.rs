//! The key help against the bindings: every key it names does something, every key that
//! does something is named, the overlay shows every row whole, and the footer's hints
//! name only keys of the help.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::tui::app::{App, Overlay, Screen};
use crate::tui::keys::{KEY_HELP, KeyHelp, action};
use crate::tui::replay::Player;
use crate::tui::tests::fixture::{self, app, draw, settle};
use crate::tui::view::help::help_rows;

/// Each key named in a row: `"← →, h l"` names `←`, `→`, `h` and `l`.
fn names(row: &KeyHelp) -> impl Iterator<Item = &'static str> {
    row.keys.split([',', ' ']).filter(|name| !name.is_empty())
}

/// The key event a name in the help stands for.
fn event(name: &str) -> KeyEvent {
    let named = |code| KeyEvent::new(code, KeyModifiers::NONE);
    let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
    let shift = |code| KeyEvent::new(code, KeyModifiers::SHIFT);
    match name {
        "Tab" => named(KeyCode::Tab),
        "Shift-Tab" => named(KeyCode::BackTab),
        "↑" => named(KeyCode::Up),
        "↓" => named(KeyCode::Down),
        "←" => named(KeyCode::Left),
        "→" => named(KeyCode::Right),
        "Shift-←" => shift(KeyCode::Left),
        "Shift-→" => shift(KeyCode::Right),
        "PgUp" => named(KeyCode::PageUp),
        "PgDn" => named(KeyCode::PageDown),
        "Home" => named(KeyCode::Home),
        "End" => named(KeyCode::End),
        "Enter" => named(KeyCode::Enter),
        "Esc" => named(KeyCode::Esc),
        "Backspace" => named(KeyCode::Backspace),
        "F1" => named(KeyCode::F(1)),
        "space" => named(KeyCode::Char(' ')),
        "Ctrl-B" => ctrl('b'),
        "Ctrl-F" => ctrl('f'),
        "Ctrl-C" => ctrl('c'),
        _ => {
            let mut chars = name.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => named(KeyCode::Char(c)),
                _ => panic!("the key help names `{name}`, which this test cannot press"),
            }
        }
    }
}

fn named_events() -> Vec<KeyEvent> {
    KEY_HELP.iter().flat_map(names).map(event).collect()
}

#[test]
fn every_key_the_help_names_is_bound() {
    for row in KEY_HELP {
        for name in names(row) {
            assert!(
                action(event(name)).is_some(),
                "the help names `{name}` ({}), but it does nothing",
                row.does
            );
        }
    }
}

#[test]
fn every_bound_key_is_in_the_help() {
    let named = named_events();
    let plain = |code| KeyEvent::new(code, KeyModifiers::NONE);
    let mut codes: Vec<KeyCode> = (' '..='~').map(KeyCode::Char).collect();
    codes.extend((1..=12).map(KeyCode::F));
    codes.extend([
        KeyCode::Up,
        KeyCode::Down,
        KeyCode::Left,
        KeyCode::Right,
        KeyCode::PageUp,
        KeyCode::PageDown,
        KeyCode::Home,
        KeyCode::End,
        KeyCode::Enter,
        KeyCode::Esc,
        KeyCode::Backspace,
        KeyCode::Tab,
        KeyCode::BackTab,
        KeyCode::Delete,
        KeyCode::Insert,
    ]);
    let mut bound: Vec<KeyEvent> = codes
        .iter()
        .map(|&code| plain(code))
        .filter(|&key| action(key).is_some())
        .collect();
    // A modifier makes another binding only where it changes what the key does.
    for &code in &codes {
        for modifiers in [KeyModifiers::CONTROL, KeyModifiers::SHIFT] {
            let key = KeyEvent::new(code, modifiers);
            if action(key).is_some() && action(key) != action(plain(code)) {
                bound.push(key);
            }
        }
    }
    for key in bound {
        assert!(
            named.contains(&key),
            "{key:?} does {:?}, but the key help (tui/keys.rs KEY_HELP) does not name it",
            action(key)
        );
    }
}

#[test]
fn the_help_overlay_shows_every_row_whole_at_80_columns() {
    let mut app = app();
    app.overlay = Overlay::Help;
    let screen = draw(&mut app, 80, 30);
    for (keys, does) in help_rows() {
        assert!(
            screen.contains(&format!("{keys}  {does}")),
            "`{keys}  {does}` is cut or missing:\n{screen}"
        );
    }
}

/// The keys a footer hint names: its first word, cut into symbols when it is a run of
/// them (`↑↓`, `+-`).
fn hint_keys(hint: &str) -> Vec<String> {
    let first = hint.split_whitespace().next().unwrap_or_default();
    if first.chars().any(char::is_alphanumeric) {
        vec![first.to_owned()]
    } else {
        first.chars().map(String::from).collect()
    }
}

#[test]
fn the_footer_names_only_keys_of_the_help() {
    let named: Vec<&str> = KEY_HELP.iter().flat_map(names).collect();
    let replay = settle(App::replay(
        Player::new(fixture::updates()),
        "orders-4242.tsrec",
        Instant::now(),
    ));
    let mut apps = vec![replay];
    for screen in [
        Screen::Tasks,
        Screen::Task(4),
        Screen::Stalls,
        Screen::Leaks,
        Screen::Runtime,
    ] {
        let mut live = app();
        live.screen = screen;
        apps.push(live);
    }
    for mut app in apps {
        let screen = draw(&mut app, 120, 30);
        let footer = screen.lines().last().unwrap_or_default().trim_matches('"');
        let hints: Vec<&str> = footer.split(" · ").collect();
        assert!(hints.len() >= 3, "no footer hints in:\n{screen}");
        for hint in hints {
            for key in hint_keys(hint) {
                assert!(
                    named.contains(&key.as_str()),
                    "the footer names `{key}` (in `{hint}`), which the key help does not"
                );
            }
        }
    }
}
