//! The Timeline view: every thread's last seconds from the probe's activity buckets.

use std::time::Instant;

use crossterm::event::KeyCode;
use insta::assert_snapshot;
use taskscope_api::v1;

use super::fixture::{SECOND, draw, settle, updates};
use super::press;
use crate::model::fixture::{MS, at, spawned};
use crate::tui::app::{App, Screen};

const BUCKET: u64 = 20 * MS;

/// `thread`'s buckets from `from_ns` to `to_ns`, each `busy_ms` busy with `task`.
fn busy(thread: u32, from_ns: u64, to_ns: u64, busy_ms: u64, task: u64) -> v1::ThreadActivity {
    let buckets = ((to_ns - from_ns) / BUCKET) as usize;
    v1::ThreadActivity {
        thread,
        from_ns,
        bucket_ns: BUCKET,
        busy_ns: vec![busy_ms * MS; buckets],
        polls: vec![3; buckets],
        top_task: vec![task; buckets],
    }
}

/// The fixture service with the probe's activity: worker 2 three-quarters busy with
/// `conn 10.0.0.7` (task 2) until its stall at 9.4 s, worker 3 idle but for a burst of
/// `conn 10.0.0.9` (task 3) from 6 to 7 s, and a blocking thread running a closure from 8
/// to 9 s.
fn app_with_activity() -> App {
    let mut app = App::live("http://127.0.0.1:6670", Instant::now());
    app.on_link(crate::tui::live::LinkEvent::Connected);
    for mut update in updates() {
        if let Some(process) = &mut update.process {
            process.activity_bucket_ns = BUCKET;
        }
        app.apply(&update);
    }
    let mut blocking = spawned(50, "src/report.rs:40:9");
    blocking.kind = v1::TaskKind::Blocking as i32;
    let mut update = at(10 * SECOND);
    update.spawned.push(blocking);
    update.runtime = Some(crate::model::fixture::threads(&[(
        4,
        "tokio-runtime-worker",
    )]));
    update.activity = vec![
        busy(2, 0, 9_400 * MS, 15, 2),
        busy(3, 6 * SECOND, 7 * SECOND, 20, 3),
        busy(4, 8 * SECOND, 9 * SECOND, 20, 50),
    ];
    app.apply(&update);
    settle(app)
}

#[test]
fn the_timeline_shows_busy_and_idle_threads_workers_first_and_the_stall_marked() {
    let mut app = app_with_activity();
    press(&mut app, KeyCode::Char('7'));
    assert_eq!(app.screen, Screen::Timeline);
    assert_snapshot!(draw(&mut app, 100, 24));
}

#[test]
fn the_cursor_names_each_threads_busiest_task_in_its_column() {
    let mut app = app_with_activity();
    press(&mut app, KeyCode::Char('7'));
    // Zoomed in to 5 s (80 ms columns), the cursor moved back to 6.48 s: inside worker
    // 3's burst.
    press(&mut app, KeyCode::Char('+'));
    for _ in 0..44 {
        press(&mut app, KeyCode::Left);
    }
    let screen = draw(&mut app, 100, 24);
    assert!(
        screen.contains("#2 tokio-runtime-worker   75%  conn 10.0.0.7"),
        "{screen}"
    );
    assert!(
        screen.contains("#3 tokio-runtime-worker  100%  conn 10.0.0.9"),
        "{screen}"
    );
    assert_snapshot!(screen);
}

#[test]
fn the_timeline_says_what_the_set_up_cannot_see() {
    // The fixture's probe sends no activity; it also lost events and threads.
    let mut app = super::fixture::app();
    let mut update = at(10 * SECOND);
    update.drops = Some(v1::Drops {
        flight_events_overflowed: 1_200,
        flight_threads_unrecorded: 2,
        ..Default::default()
    });
    app.apply(&update);
    let mut app = settle(app);
    press(&mut app, KeyCode::Char('7'));
    assert_snapshot!(draw(&mut app, 100, 16));
}

#[test]
fn a_stable_build_and_a_console_target_are_named_as_the_reason() {
    let lines = |change: fn(&mut v1::ProcessInfo)| {
        let mut model = crate::model::Model::new();
        let mut first = crate::model::fixture::start(1, "app");
        if let Some(process) = &mut first.process {
            process.activity_bucket_ns = BUCKET;
            change(process);
        }
        model.apply(&first);
        crate::tui::viewmodel::timeline::blind(&model).join("\n")
    };
    let stable = lines(|p| p.instrumentation = v1::Instrumentation::Missing as i32);
    assert!(stable.contains("--cfg tokio_unstable"), "{stable}");
    let console = lines(|p| p.source = v1::SourceKind::Console as i32);
    assert!(console.contains("console-subscriber"), "{console}");
    let off = lines(|p| p.activity_bucket_ns = 0);
    assert!(off.contains("TASKSCOPE_FLIGHT=off"), "{off}");
    assert_eq!(lines(|_| {}), "");
}
