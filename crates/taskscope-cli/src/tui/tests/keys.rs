//! Keys and the mouse fed as events into the app, and what they change.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::{press, selected, type_text};
use crate::tui::app::{App, Link, Screen, Source};
use crate::tui::keys::Outcome;
use crate::tui::live::LinkEvent;
use crate::tui::replay::Player;
use crate::tui::tests::fixture::{self, SECOND, app, draw, settle};
use crate::tui::viewmodel::rows::Column;

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
fn esc_and_a_key_read_together_as_alt_key_do_both() {
    let mut app = app();
    press(&mut app, KeyCode::Char('4'));
    press(&mut app, KeyCode::Char('?'));
    app.on_key(KeyEvent::new(KeyCode::Char('1'), KeyModifiers::ALT));
    assert_eq!(
        app.screen,
        Screen::Tasks,
        "help closed, then the tasks view"
    );
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "cache");
    app.on_key(KeyEvent::new(KeyCode::Char('2'), KeyModifiers::ALT));
    assert!(!app.editing_filter && app.query.filter.is_empty());
    assert_eq!(app.screen, Screen::Stalls);
    // Esc Esc read together: leave the details, then clear the filter.
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "cache");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Enter);
    assert!(matches!(app.screen, Screen::Task(_)));
    app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::ALT));
    assert_eq!(app.screen, Screen::Tasks);
    assert!(app.query.filter.is_empty());
}

#[test]
fn sorting_cycles_columns_inverts_and_keeps_the_selection() {
    let mut app = app();
    press(&mut app, KeyCode::Down);
    let chosen = selected(&app);
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.query.sort.column, Column::Id);
    assert_eq!(selected(&app), chosen, "the selected task stays selected");
    assert_eq!(
        app.derived.rows.first().and_then(|r| r.item.task()),
        Some(1)
    );
    press(&mut app, KeyCode::Char('i'));
    assert_eq!(
        app.derived.rows.first().and_then(|r| r.item.task()),
        Some(111)
    );
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
        app.derived
            .rows
            .iter()
            .filter_map(|r| r.item.task())
            .collect::<Vec<_>>(),
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
    let server = rows
        .iter()
        .position(|r| r.item.task() == Some(1))
        .unwrap_or(usize::MAX);
    let conn = rows
        .iter()
        .position(|r| r.item.task() == Some(2))
        .unwrap_or(0);
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
    // The table header is row 3; the ID column follows the 13 columns of flags in words.
    app.on_mouse(click(15, 3));
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
fn enter_on_a_spawn_site_in_leaks_lists_its_tasks() {
    let mut app = app();
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Tasks);
    assert_eq!(app.query.filter, "src/session.rs:15:9");
    assert_eq!(app.derived.rows.len(), 12);
}

#[test]
fn the_header_counts_the_tasks_the_probe_counted_by_site() {
    let mut app = app();
    assert!(!draw(&mut app, 120, 30).contains("counted by site"));
    let mut update = crate::model::fixture::at(app.now_ns() + 1);
    update.folded.push(taskscope_api::v1::FoldedTasks {
        location: Some(taskscope_api::v1::Location {
            file: "src/pool.rs".into(),
            line: 40,
            column: 9,
        }),
        tasks: 2_400,
        polls: 4_800,
        ..Default::default()
    });
    app.apply(&update);
    let mut app = settle(app);
    let screen = draw(&mut app, 120, 30);
    assert!(
        screen.contains("+2400 short-lived counted by site"),
        "{screen}"
    );
}
