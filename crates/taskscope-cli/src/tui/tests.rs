//! Whole screens drawn into a `TestBackend` and compared with snapshot files, and keys fed
//! as `KeyEvent`s. The fixture service is in [`super::fixture`].

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use insta::assert_snapshot;
use taskscope_api::v1;

use super::app::{App, Link, Overlay, Screen, Source};
use super::keys::Outcome;
use super::live::LinkEvent;
use super::replay::Player;
use fixture::{SECOND, app, draw, settle};

mod bench;
pub(crate) mod fixture;
mod folded;
mod holders;
mod hostile;
mod key_help;
mod keys;
mod lanes;
mod resources;
mod timeline;
mod waiting;

pub(super) fn press(app: &mut App, code: KeyCode) -> Outcome {
    let outcome = app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
    app.refresh_rows();
    outcome
}

pub(super) fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

pub(super) fn selected(app: &App) -> Option<u64> {
    app.selected.and_then(super::viewmodel::rows::Item::task)
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
fn task_details_name_their_task_after_every_tab_at_80_and_100_columns() {
    let mut app = app();
    app.screen = Screen::Task(5);
    for width in [80, 100] {
        let screen = draw(&mut app, width, 24);
        let bar = screen.lines().nth(2).unwrap();
        assert!(bar.contains("7 Time") && bar.contains(" task 5 "), "{bar}");
    }
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
fn stall_stack_overlay_unfolds_the_runtimes_frames_on_f() {
    let mut app = app();
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    let folded = draw(&mut app, 100, 24);
    assert!(
        !folded.contains("run_task") && folded.contains("4 frames"),
        "{folded}"
    );
    press(&mut app, KeyCode::Char('f'));
    let unfolded = draw(&mut app, 100, 24);
    assert!(
        unfolded.contains("run_task") && unfolded.contains("f folds"),
        "{unfolded}"
    );
    // Folded again for the next stack opened.
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Enter);
    assert!(!app.all_frames);
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
fn runtime_view_says_the_hooks_route_does_not_see_the_blocking_pool() {
    let mut app = App::live("http://127.0.0.1:6670", Instant::now());
    app.on_link(LinkEvent::Connected);
    for mut update in fixture::updates() {
        if let Some(process) = &mut update.process {
            process.route = v1::Route::Hooks as i32;
        }
        app.apply(&update);
    }
    let mut app = settle(app);
    press(&mut app, KeyCode::Char('4'));
    let screen = draw(&mut app, 100, 24);
    assert!(
        screen.contains("blocking pool: not observed on the probe's hooks route"),
        "{screen}"
    );
    assert!(!screen.contains("busy"), "no made-up zero:\n{screen}");
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
fn a_target_whose_subscriber_hides_tokio_spans_says_so_and_how_to_fix_it() {
    let mut app = App::live("http://127.0.0.1:6670", Instant::now());
    app.on_link(LinkEvent::Connected);
    let mut first = crate::model::fixture::start(78, "/srv/bin/service");
    if let Some(process) = &mut first.process {
        process.instrumentation = v1::Instrumentation::Filtered as i32;
    }
    app.apply(&first);
    let mut app = settle(app);
    assert_snapshot!(draw(&mut app, 100, 24));
}

/// A process built without `--cfg tokio_unstable`, under the macros: two workers, one
/// blocked in `std::thread::sleep` for 300 ms so far, the other parked for 250 ms; 7
/// tasks alive.
fn workers_only_app() -> App {
    let mut app = App::live("http://127.0.0.1:6670", Instant::now());
    app.on_link(LinkEvent::Connected);
    let mut first = crate::model::fixture::start(79, "/srv/bin/plain");
    if let Some(process) = &mut first.process {
        process.instrumentation = v1::Instrumentation::Missing as i32;
        process.capability = v1::Capability::Workers as i32;
        process.route = v1::Route::Hooks as i32;
    }
    let mut runtime = crate::model::fixture::threads(&[
        (1, "main"),
        (2, "tokio-runtime-worker"),
        (3, "tokio-runtime-worker"),
    ]);
    for (thread, parked, since_ns) in [(1, false, 100_000_000), (2, true, 150_000_000)] {
        let state = &mut runtime.threads[thread];
        state.worker = true;
        state.parked = parked;
        state.since_ns = since_ns;
        state.metrics_known = true;
        state.busy_ns = 42_000_000;
        state.parks = 17;
    }
    runtime.runtimes_known = true;
    runtime.alive_tasks = 7;
    runtime.workers = 2;
    first.runtime = Some(runtime);
    first.now_ns = 400_000_000;
    let mut stall = crate::model::fixture::stall(1, 99, v1::StallPhase::Ongoing, 300_000_000);
    stall.poll_started_ns = 100_000_000;
    stall.samples.push(v1::StackSample {
        at_ns: 100_000_000,
        frames: vec![
            v1::Frame {
                user: true,
                ..crate::model::fixture::frame(
                    "std::thread::sleep",
                    "/rustc/library/std/src/thread/functions.rs:289:5",
                )
            },
            v1::Frame {
                user: true,
                ..crate::model::fixture::frame("app::main::{{closure}}", "src/main.rs:16:9")
            },
        ],
        ..Default::default()
    });
    first.stalls.push(stall);
    app.apply(&first);
    settle(app)
}

#[test]
fn built_without_tokio_unstable_the_tasks_view_says_what_is_seen_and_what_the_cfg_adds() {
    let mut app = workers_only_app();
    assert_snapshot!(draw(&mut app, 90, 16));
}

#[test]
fn built_without_tokio_unstable_the_runtime_view_shows_the_blocked_worker_and_its_line() {
    let mut app = workers_only_app();
    press(&mut app, KeyCode::Char('4'));
    let screen = draw(&mut app, 90, 12);
    assert!(
        screen.contains("stalled") && screen.contains("src/main.rs:16:9"),
        "{screen}"
    );
    assert!(
        screen.contains("parked") && screen.contains("7 tasks alive"),
        "{screen}"
    );
    assert_snapshot!(screen);
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
        for screen in Screen::TABS.into_iter().chain([Screen::Task(4)]) {
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
fn docs_list_every_flag_of_the_help() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/dashboard.md");
    let docs = std::fs::read_to_string(path).unwrap_or_default();
    assert!(docs.contains("Mouse:"));
    for (_, glyph, word, _) in super::viewmodel::findings::Flags::GLYPHS {
        assert!(
            docs.contains(&format!("`{glyph}`")) && docs.contains(&format!("`{word}")),
            "docs/dashboard.md lacks flag `{word}` (`{glyph}`)"
        );
    }
}

#[test]
fn waiting_says_why_the_last_attempt_failed() {
    let mut app = fixture::waiting();
    app.source = Source::Live(Link::Waiting {
        reason: "nothing is listening on unix:/tmp/app.sock: is the app running with the \
                 probe (#[taskscope::main] or taskscope::init()) and \
                 TASKSCOPE_BIND=unix:/tmp/app.sock?"
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
fn dropped_wait_facts_are_counted_and_named_in_the_header() {
    let mut app = app();
    let mut update = crate::model::fixture::at(10 * SECOND);
    update.drops = Some(v1::Drops {
        tasks_lost: 1,
        wait_events: 7,
        ..Default::default()
    });
    app.apply(&update);
    app.refresh();
    let screen = draw(&mut app, 140, 24);
    assert!(
        screen.contains("PROBE DROPPED 8: 1 tasks, 7 wait facts"),
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
