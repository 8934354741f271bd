//! Whole screens drawn into a `TestBackend` and compared with snapshot files, and keys fed
//! as `KeyEvent`s. The fixture service is in [`super::fixture`].

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use insta::assert_snapshot;
use taskscope_api::v1;

use super::app::{App, Link, Overlay, Screen, Source};
use super::fixture::{self, SECOND, app, draw, settle};
use super::keys::Outcome;
use super::live::LinkEvent;
use super::replay::Player;
use super::rows::Column;

mod hostile;

fn press(app: &mut App, code: KeyCode) -> Outcome {
    let outcome = app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
    app.refresh_rows();
    outcome
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

fn selected(app: &App) -> Option<u64> {
    app.selected_task
}

#[test]
fn tasks_view_at_80x24() {
    assert_snapshot!(draw(&mut app(), 80, 24));
}

#[test]
fn tasks_view_on_a_wide_terminal_shows_every_column() {
    assert_snapshot!(draw(&mut app(), 150, 30));
}

#[test]
fn tasks_view_as_a_tree() {
    let mut app = app();
    press(&mut app, KeyCode::Char('t'));
    assert_snapshot!(draw(&mut app, 100, 30));
}

#[test]
fn tasks_view_filtered() {
    let mut app = app();
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "session");
    assert_snapshot!(draw(&mut app, 80, 24));
}

#[test]
fn task_details_with_its_stall_and_stack() {
    let mut app = app();
    app.screen = Screen::Task(5);
    assert_snapshot!(draw(&mut app, 100, 34));
}

#[test]
fn task_details_of_a_panicked_task() {
    let mut app = app();
    app.screen = Screen::Task(7);
    assert_snapshot!(draw(&mut app, 80, 24));
}

#[test]
fn stalls_view_lists_the_live_stall_first() {
    let mut app = app();
    press(&mut app, KeyCode::Char('2'));
    assert_snapshot!(draw(&mut app, 80, 24));
}

#[test]
fn stall_stack_overlay() {
    let mut app = app();
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.overlay, Overlay::Stack(1));
    assert_snapshot!(draw(&mut app, 80, 24));
}

#[test]
fn leaks_view() {
    let mut app = app();
    press(&mut app, KeyCode::Char('3'));
    assert_snapshot!(draw(&mut app, 80, 24));
}

#[test]
fn runtime_view() {
    let mut app = app();
    press(&mut app, KeyCode::Char('4'));
    assert_snapshot!(draw(&mut app, 80, 24));
}

#[test]
fn help_overlay() {
    let mut app = app();
    press(&mut app, KeyCode::Char('?'));
    assert_snapshot!(draw(&mut app, 80, 30));
}

#[test]
fn empty_while_waiting_for_the_target() {
    assert_snapshot!(draw(&mut fixture::waiting(), 80, 24));
}

#[test]
fn disconnected_keeps_the_last_state() {
    let mut app = app();
    app.on_link(LinkEvent::Lost {
        reason: "the process closed the stream".into(),
    });
    assert_snapshot!(draw(&mut app, 80, 24));
}

#[test]
fn uninstrumented_target_shows_the_banner_not_an_empty_table() {
    let mut app = App::live("http://127.0.0.1:6670", Instant::now());
    app.on_link(LinkEvent::Connected);
    let mut first = crate::model::fixture::start(77, "/srv/bin/plain");
    if let Some(process) = &mut first.process {
        process.instrumentation = v1::Instrumentation::Missing as i32;
    }
    app.apply(&first);
    let mut app = settle(app);
    assert_snapshot!(draw(&mut app, 80, 24));
}

#[test]
fn replay_shows_its_position_and_jumps_to_the_stall() {
    let mut app = settle(App::replay(
        Player::new(fixture::updates()),
        "orders-4242.tsrec",
        Instant::now(),
    ));
    press(&mut app, KeyCode::Char(']'));
    app.refresh();
    assert_snapshot!(draw(&mut app, 80, 24));
    assert_eq!(app.derived.findings.stalls_total, 1);
    press(&mut app, KeyCode::Char(']'));
    app.refresh();
    assert_eq!(app.derived.findings.stalls_now, 1);
}

#[test]
fn tiny_terminals_degrade_without_panicking() {
    for (w, h) in [(0, 0), (1, 1), (20, 3), (40, 6), (60, 12)] {
        for screen in [
            Screen::Tasks,
            Screen::Task(4),
            Screen::Stalls,
            Screen::Leaks,
            Screen::Runtime,
        ] {
            let mut app = app();
            app.screen = screen;
            draw(&mut app, w, h);
            app.overlay = Overlay::Help;
            draw(&mut app, w, h);
            app.overlay = Overlay::Stack(1);
            draw(&mut app, w, h);
        }
    }
}

#[test]
fn keys_switch_views_open_details_and_come_back() {
    let mut app = app();
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.screen, Screen::Stalls);
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.screen, Screen::Tasks);
    let first = selected(&app);
    assert_eq!(first, Some(4), "the task stalling now sorts first");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Task(4));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.screen, Screen::Tasks);
    assert_eq!(press(&mut app, KeyCode::Char('q')), Outcome::Quit);
    let ctrl_c = app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(ctrl_c, Outcome::Quit);
}

#[test]
fn sorting_cycles_columns_inverts_and_keeps_the_selection() {
    let mut app = app();
    press(&mut app, KeyCode::Down);
    let chosen = selected(&app);
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.query.sort.column, Column::Id);
    assert_eq!(selected(&app), chosen, "the selected task stays selected");
    assert_eq!(app.derived.rows.first().map(|r| r.id), Some(1));
    press(&mut app, KeyCode::Char('i'));
    assert_eq!(app.derived.rows.first().map(|r| r.id), Some(111));
    press(&mut app, KeyCode::Char('S'));
    assert_eq!(app.query.sort.column, Column::Flags);
}

#[test]
fn filter_typing_matches_name_location_and_state_and_esc_clears_it() {
    let mut app = app();
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "panicked");
    assert_eq!(app.derived.rows.len(), 1);
    press(&mut app, KeyCode::Enter);
    assert!(!app.editing_filter);
    press(&mut app, KeyCode::Char('/'));
    for _ in 0.."panicked".len() {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "cache.rs");
    assert_eq!(
        app.derived.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        [5]
    );
    press(&mut app, KeyCode::Esc);
    assert!(app.query.filter.is_empty());
    assert_eq!(app.derived.rows.len(), 20);
}

#[test]
fn tree_mode_puts_children_under_their_parent() {
    let mut app = app();
    press(&mut app, KeyCode::Char('t'));
    let rows = &app.derived.rows;
    let server = rows.iter().position(|r| r.id == 1).unwrap_or(usize::MAX);
    let conn = rows.iter().position(|r| r.id == 2).unwrap_or(0);
    assert!(server < conn);
    assert_eq!(rows[conn].depth, 1);
}

#[test]
fn space_freezes_the_display_while_updates_keep_coming() {
    let mut app = app();
    press(&mut app, KeyCode::Char(' '));
    let mut more = crate::model::fixture::at(11 * SECOND);
    more.spawned
        .push(crate::model::fixture::spawned(500, "src/new.rs:1:1"));
    app.apply(&more);
    app.refresh();
    assert_eq!(app.derived.counts.total(), 20, "frozen");
    press(&mut app, KeyCode::Char(' '));
    app.refresh();
    assert_eq!(app.derived.counts.total(), 21, "caught up");
}

#[test]
fn a_new_pid_starts_a_fresh_view_and_says_so() {
    let mut app = app();
    app.screen = Screen::Task(4);
    app.on_link(LinkEvent::Lost {
        reason: "gone".into(),
    });
    app.on_link(LinkEvent::Connected);
    app.apply(&crate::model::fixture::start(5151, "/srv/bin/orders"));
    app.refresh();
    assert_eq!(app.derived.counts.total(), 0);
    assert_eq!(app.screen, Screen::Tasks);
    assert!(app.notice.as_deref().is_some_and(|n| n.contains("5151")));
    assert_eq!(app.source_link(), Some(&Link::Live));
}

#[test]
fn mouse_clicks_switch_tabs_sort_and_select() {
    let mut app = app();
    app.size = ratatui::layout::Rect::new(0, 0, 80, 24);
    let click = |column, row| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column,
        row,
        modifiers: KeyModifiers::NONE,
    };
    draw(&mut app, 80, 24);
    // Tab bar is row 2; "Stalls" starts after the Tasks label.
    app.on_mouse(click(20, 2));
    assert_eq!(app.screen, Screen::Stalls);
    app.on_mouse(click(2, 2));
    assert_eq!(app.screen, Screen::Tasks);
    // The table header is row 3; column 6 is the ID column.
    app.on_mouse(click(7, 3));
    app.refresh_rows();
    assert_eq!(app.query.sort.column, Column::Id);
    app.on_mouse(click(7, 6));
    assert_eq!(app.tasks.index, 2);
    let scroll = MouseEvent {
        kind: MouseEventKind::ScrollDown,
        ..click(0, 10)
    };
    app.on_mouse(scroll);
    assert_eq!(app.tasks.index, 5);
}

#[test]
fn replay_keys_play_seek_and_change_speed() {
    let mut app = settle(App::replay(
        Player::new(fixture::updates()),
        "rec.tsrec",
        Instant::now(),
    ));
    let Source::Replay(player) = &app.source else {
        panic!("a replay")
    };
    assert!(player.playing());
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char('+'));
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Right);
    let Source::Replay(player) = &app.source else {
        panic!("a replay")
    };
    assert!(!player.playing());
    assert_eq!(player.speed(), 2.0);
    assert_eq!(player.elapsed_ns(), 2 * SECOND);
    press(&mut app, KeyCode::Char('['));
    assert!(
        app.notice
            .as_deref()
            .is_some_and(|n| n.contains("no stall before"))
    );
}

#[test]
fn docs_list_every_key_and_flag_of_the_help() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/dashboard.md");
    let docs = std::fs::read_to_string(path).unwrap_or_default();
    let keys = super::view::help::KEYS;
    let blank = keys
        .iter()
        .position(|(key, _)| key.is_empty())
        .unwrap_or(keys.len());
    for (key, _) in &keys[..blank] {
        for token in key
            .split([',', ' '])
            .filter(|t| !t.is_empty() && *t != "mouse")
        {
            assert!(
                docs.contains(&format!("`{token}`")),
                "docs/dashboard.md lacks `{token}`"
            );
        }
    }
    assert!(docs.contains("Mouse:"));
    for (_, glyph, _) in super::findings::Flags::GLYPHS {
        assert!(
            docs.contains(&format!("`{glyph}`")),
            "docs/dashboard.md lacks flag `{glyph}`"
        );
    }
}

#[test]
fn waiting_says_why_the_last_attempt_failed() {
    let mut app = fixture::waiting();
    app.source = Source::Live(Link::Waiting {
        reason: "nothing is listening on unix:/tmp/app.sock: is the app running with \
                 taskscope::init() and TASKSCOPE_BIND=unix:/tmp/app.sock?"
            .into(),
        retry_in: std::time::Duration::from_secs(1),
    });
    let screen = draw(&mut app, 80, 24);
    assert!(screen.contains("nothing is listening"), "{screen}");
    assert!(
        screen.contains("TASKSCOPE_BIND=unix:/tmp/app.sock?"),
        "{screen}"
    );
}

#[test]
fn dropped_events_are_loud_in_the_header() {
    let mut app = app();
    let mut update = crate::model::fixture::at(10 * SECOND);
    update.drops = Some(v1::Drops {
        tasks_lost: 3,
        stall_events: 1,
        ..Default::default()
    });
    app.apply(&update);
    app.refresh();
    let screen = draw(&mut app, 120, 24);
    assert!(
        screen.contains("PROBE DROPPED 4: 3 tasks, 1 stall facts"),
        "{screen}"
    );
}

#[test]
fn without_colour_every_style_keeps_only_its_modifiers() {
    let theme = super::theme::Theme::plain();
    for style in [
        theme.bad(),
        theme.warn(),
        theme.good(),
        theme.dim(),
        theme.title(),
        theme.alarm(),
    ] {
        assert_eq!(style.fg, None);
        assert_eq!(style.bg, None);
    }
}

#[test]
fn enter_on_a_spawn_site_in_leaks_lists_its_tasks() {
    let mut app = app();
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Tasks);
    assert_eq!(app.query.filter, "src/session.rs:15:9");
    assert_eq!(app.derived.rows.len(), 12);
}
