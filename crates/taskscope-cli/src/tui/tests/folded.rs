//! Short-lived tasks the probe counted by spawn site: one row a site in the task table,
//! marked as a site and sorted and filtered with the tasks, and details that say what the
//! site's tasks were and why they are not listed one by one.

use std::time::{Duration, Instant};

use crossterm::event::KeyCode;
use insta::assert_snapshot;
use taskscope_api::v1;

use super::fixture::{app, draw, settle, updates};
use super::{press, type_text};
use crate::model::fixture::{MS, at, ended, spawned};
use crate::tui::app::{App, Screen};
use crate::tui::replay::Player;
use crate::tui::viewmodel::rows::{Column, Item, Sort};

const POOL: &str = "src/pool.rs:40:9";

fn site(file: &str, line: u32, tasks: u64, busy_ns: u64, max_poll_ns: u64) -> v1::FoldedTasks {
    v1::FoldedTasks {
        location: Some(v1::Location {
            file: file.into(),
            line,
            column: 9,
        }),
        kind: v1::TaskKind::Task as i32,
        tasks,
        polls: 2 * tasks,
        busy_ns,
        max_poll_ns,
        ids: Vec::new(),
    }
}

/// After the fixture's updates: a pool that churned almost two million tasks (one of them
/// listed one by one) and a feed that churned a few thousand.
fn churn() -> v1::Update {
    let last = updates().last().map_or(0, |u| u.now_ns);
    let mut update = at(last + MS);
    let mut first = spawned(500, POOL);
    first.spawned_ns = last;
    update.spawned.push(first);
    update.ended.push(v1::TaskEnded {
        ended_ns: last + 40_000,
        ..ended(
            500,
            v1::Outcome::Completed,
            Some(v1::TaskStats {
                id: 500,
                polls: 2,
                busy_ns: 30_000,
                max_poll_ns: 20_000,
                ..Default::default()
            }),
        )
    });
    update
        .folded
        .push(site("src/pool.rs", 40, 1_918_671, 2_100 * MS, 1_200_000));
    update
        .folded
        .push(site("src/feed.rs", 12, 2_400, 7 * MS, 90_000));
    update
}

fn churning() -> App {
    let mut app = app();
    app.apply(&churn());
    settle(app)
}

fn site_of(app: &App, location: &str) -> Item {
    let found = app
        .shown()
        .folded()
        .find(|&(site, _)| app.shown().location(site) == location);
    match found {
        Some((site, _)) => Item::Site(site),
        None => panic!("no tally at {location}"),
    }
}

fn items(app: &App) -> Vec<Item> {
    app.derived.rows.iter().map(|row| row.item).collect()
}

fn sort_by(app: &mut App, column: Column) {
    app.query.sort = Sort {
        column,
        inverted: false,
    };
    app.refresh_rows();
}

/// The table lines that are a site's row.
fn site_lines(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|line| line.starts_with("\"site "))
        .collect()
}

#[test]
fn each_site_of_short_lived_tasks_is_a_row_with_its_tally() {
    let mut app = churning();
    assert_snapshot!(draw(&mut app, 150, 30));
}

#[test]
fn at_80_columns_a_sites_row_still_says_how_many_tasks_and_where() {
    let screen = draw(&mut churning(), 80, 24);
    assert!(
        site_lines(&screen)
            .iter()
            .any(|line| line.contains("×1,918,671 tasks") && line.contains("done")),
        "{screen}"
    );
    assert!(
        screen.contains("+1921071 short-lived counted by site"),
        "{screen}"
    );
}

#[test]
fn site_rows_sort_by_their_busy_time_and_polls_with_the_tasks() {
    let mut app = churning();
    let pool = site_of(&app, POOL);
    let feed = site_of(&app, "src/feed.rs:12:9");
    // 2.1 s in polls: more than the stalled report task's 1.2 s.
    sort_by(&mut app, Column::Busy);
    assert_eq!(items(&app)[0], pool);
    assert!(items(&app).contains(&feed));
    sort_by(&mut app, Column::Polls);
    assert_eq!(items(&app)[..2], [pool, feed]);
    // By flags, the default: the flagged tasks, then the sites, then the other tasks.
    sort_by(&mut app, Column::Flags);
    assert_eq!(items(&app)[5..7], [feed, pool]);
    assert_eq!(items(&app).len(), 21 + 2);
}

#[test]
fn the_filter_finds_a_site_by_its_location_and_site_lists_the_sites_alone() {
    let mut app = churning();
    let pool = site_of(&app, POOL);
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "pool");
    assert_eq!(items(&app), [pool, Item::Task(500)]);
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "site");
    assert_eq!(items(&app).len(), 2);
    assert!(items(&app).iter().all(|item| matches!(item, Item::Site(_))));
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "idle");
    assert!(!items(&app).iter().any(|item| matches!(item, Item::Site(_))));
}

#[test]
fn in_the_tree_a_site_is_a_root() {
    let mut app = churning();
    let pool = site_of(&app, POOL);
    press(&mut app, KeyCode::Char('t'));
    let row = app.derived.rows.iter().find(|row| row.item == pool);
    assert_eq!(row.map(|row| row.depth), Some(0));
}

#[test]
fn enter_on_a_site_row_says_what_its_tasks_were_and_why_they_are_not_listed() {
    let mut app = churning();
    let pool = site_of(&app, POOL);
    sort_by(&mut app, Column::Busy);
    press(&mut app, KeyCode::Home);
    assert_eq!(app.selected, Some(pool));
    press(&mut app, KeyCode::Enter);
    let Item::Site(location) = pool else {
        unreachable!()
    };
    assert_eq!(app.screen, Screen::Site(location));
    assert_snapshot!(draw(&mut app, 100, 24));
    // The selection follows the row through a refresh; Esc goes back to it.
    app.apply(&churn());
    app.refresh();
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.screen, Screen::Tasks);
    assert_eq!(app.selected, Some(pool));
}

#[test]
fn a_replay_shows_the_same_site_rows() {
    let mut live = churning();
    let live_screen = draw(&mut live, 150, 30);
    let mut recorded = updates();
    recorded.push(churn());
    let start = Instant::now();
    let mut replay = App::replay(Player::new(recorded), "churn.tsrec", start);
    replay.tick(start + Duration::from_secs(60));
    let mut replay = settle(replay);
    let replay_screen = draw(&mut replay, 150, 30);
    assert_eq!(site_lines(&live_screen).len(), 2, "{live_screen}");
    assert_eq!(
        site_lines(&replay_screen),
        site_lines(&live_screen),
        "{replay_screen}"
    );
}

/// Data that came between two refreshes and a key that rebuilds the rows at once: the
/// header counts what the rows list, not what the last refresh saw.
#[test]
fn rows_rebuilt_by_a_key_between_refreshes_agree_with_the_header() {
    let mut app = app();
    let start = Instant::now();
    app.apply(&at(app.now_ns() + MS));
    app.tick(start);
    app.apply(&churn());
    for key in "/site".chars().map(KeyCode::Char).chain([KeyCode::Enter]) {
        app.on_key(crossterm::event::KeyEvent::new(
            key,
            crossterm::event::KeyModifiers::NONE,
        ));
    }
    app.tick(start + Duration::from_millis(10));
    assert!(
        app.derived
            .rows
            .iter()
            .any(|row| matches!(row.item, Item::Site(_))),
        "the filter lists the sites"
    );
    let screen = draw(&mut app, 120, 30);
    assert!(
        screen.contains("short-lived counted by site"),
        "the header counts the sites the rows list:\n{screen}"
    );
}
