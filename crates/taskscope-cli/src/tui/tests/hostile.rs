//! A stream from a buggy, newer or hostile probe must never crash the dashboard: extreme
//! numbers, unknown enum values, oversized histograms, ids that point nowhere, parent
//! cycles, time running backwards, dumps whose indexes point nowhere.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use taskscope_api::v1;

use crate::tui::app::{App, Overlay, Screen};
use crate::tui::live::LinkEvent;
use crate::tui::replay::Player;
use crate::tui::tests::fixture::{draw, settle};

fn hostile_updates() -> Vec<v1::Update> {
    let mut first = crate::model::fixture::start(u32::MAX, "");
    if let Some(process) = &mut first.process {
        process.instrumentation = 99;
        process.stall_threshold_ns = u64::MAX;
    }
    let mut update = crate::model::fixture::at(u64::MAX);
    for id in [0, 1, 2, u64::MAX] {
        let mut spawned = crate::model::fixture::spawned(id, "::");
        spawned.kind = -5;
        // 1 and 2 are each other's parent; 0 is its own.
        spawned.parent_id = match id {
            1 => 2,
            2 => 1,
            other => other,
        };
        spawned.spawned_ns = u64::MAX;
        spawned.spawn_thread = u32::MAX;
        spawned.name = "\u{1b}[31m\t\u{0}名前".repeat(30);
        update.spawned.push(spawned);
        update.stats.push(v1::TaskStats {
            id,
            state: 42,
            polls: u64::MAX,
            busy_ns: u64::MAX,
            scheduled_ns: u64::MAX,
            wakers: i64::MIN,
            running_thread: u32::MAX,
            last_poll_start_ns: u64::MAX,
            last_poll_end_ns: 0,
            poll_histogram: vec![u32::MAX; 300],
            max_poll_ns: u64::MAX,
            ..Default::default()
        });
    }
    for line in [1, 2] {
        update.folded.push(v1::FoldedTasks {
            location: Some(v1::Location {
                file: "\u{1b}[2J".into(),
                line,
                column: u32::MAX,
            }),
            kind: -3,
            tasks: u64::MAX,
            polls: u64::MAX,
            busy_ns: u64::MAX,
            max_poll_ns: u64::MAX,
            ids: vec![0, 1, u64::MAX, u64::MAX],
        });
    }
    update.ended.push(v1::TaskEnded {
        id: 7,
        outcome: 1234,
        ended_ns: 0,
        ..Default::default()
    });
    update.stalls.push(v1::Stall {
        stall_id: 1,
        phase: 77,
        task_id: 999,
        thread: u32::MAX,
        poll_started_ns: u64::MAX,
        duration_ns: u64::MAX,
        ..Default::default()
    });
    update.runtime = Some(v1::RuntimeState {
        threads: vec![v1::ThreadState {
            thread: u32::MAX,
            polling_task: u64::MAX,
            poll_started_ns: u64::MAX,
            worker: true,
            since_ns: u64::MAX,
            metrics_known: true,
            busy_ns: u64::MAX,
            parks: u64::MAX,
            ..Default::default()
        }],
        blocking_alive: 0,
        blocking_running: u64::MAX,
        alive_tasks: u64::MAX,
        workers: u32::MAX,
        runtimes_known: true,
    });
    update.drops = Some(v1::Drops {
        tasks_lost: u64::MAX,
        stall_events: u64::MAX,
        ..Default::default()
    });
    update.dumps.push(v1::Dump {
        taken_ns: u64::MAX,
        trigger: -3,
        pause_ns: u64::MAX,
        chains: [0, 1, 2, u64::MAX, 12345]
            .into_iter()
            .map(|task_id| v1::AwaitChain {
                task_id,
                leaves: vec![0, 1, u32::MAX],
            })
            .collect(),
        frames: vec![v1::Frame {
            function: "<<<\u{1b}[2J>>>::{{closure}}".repeat(40),
            location: ":::".into(),
            user: true,
            ..Default::default()
        }],
        leaves: vec![
            v1::AwaitLeaf {
                frames: vec![0, 0, u32::MAX, 7],
                await_frame: u32::MAX,
            },
            v1::AwaitLeaf {
                frames: vec![0],
                await_frame: 1,
            },
        ],
        chains_left_out: u64::MAX,
        ..Default::default()
    });
    let backwards = crate::model::fixture::at(5);
    vec![first, update, backwards]
}

fn every_screen(app: &mut App) {
    // The sites of the tasks counted by site, and one that names nothing.
    let sites: Vec<Screen> = (app.shown().folded().map(|(site, _)| Screen::Site(site)))
        .chain([Screen::Site(crate::model::LocationId(u32::MAX))])
        .collect();
    for screen in [
        Screen::Tasks,
        Screen::Task(0),
        Screen::Task(1),
        Screen::Task(u64::MAX),
        Screen::Stalls,
        Screen::Leaks,
        Screen::Runtime,
        Screen::Waiting,
    ]
    .into_iter()
    .chain(sites)
    {
        app.screen = screen;
        for overlay in [Overlay::None, Overlay::Help, Overlay::Stack(1)] {
            app.overlay = overlay;
            for (w, h) in [(80, 24), (200, 60), (12, 5)] {
                draw(app, w, h);
            }
        }
    }
    app.overlay = Overlay::None;
    for key in [
        KeyCode::Char('t'),
        KeyCode::Char('s'),
        KeyCode::End,
        KeyCode::Enter,
        KeyCode::PageDown,
        KeyCode::Char('i'),
        KeyCode::Char(']'),
        KeyCode::Left,
        KeyCode::Char('5'),
        KeyCode::Enter,
        KeyCode::Char('d'),
        KeyCode::Char('f'),
    ] {
        app.on_key(KeyEvent::new(key, KeyModifiers::NONE));
        app.refresh();
        draw(app, 80, 24);
    }
}

#[test]
fn a_hostile_live_stream_is_drawn_without_panicking() {
    let mut app = App::live("x", Instant::now());
    app.on_link(LinkEvent::Connected);
    for update in hostile_updates() {
        app.apply(&update);
    }
    let mut app = settle(app);
    every_screen(&mut app);
}

#[test]
fn a_hostile_recording_is_replayed_without_panicking() {
    let mut app = settle(App::replay(
        Player::new(hostile_updates()),
        "x.tsrec",
        Instant::now(),
    ));
    app.tick(Instant::now());
    every_screen(&mut app);
}
