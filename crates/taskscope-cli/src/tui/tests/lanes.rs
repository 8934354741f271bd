//! The stall overlay's per-thread timeline, from the stall's flight-recorder window.

use crossterm::event::KeyCode;
use insta::assert_snapshot;
use taskscope_api::v1::{self, FlightEventKind as Kind};

use super::fixture::{SECOND, app, draw};
use super::press;
use crate::model::fixture::MS;

/// One thread's events as the protocol's columns, from a window starting at 0.5 s.
fn thread(number: u32, events: &[(Kind, u64, u64)]) -> v1::FlightThread {
    let mut thread = v1::FlightThread {
        thread: number,
        name: "tokio-runtime-worker".into(),
        ..Default::default()
    };
    let mut last = 500 * MS;
    for &(kind, task, at) in events {
        thread.kinds.push(kind as i32);
        thread.task_ids.push(task);
        thread.at_deltas_ns.push(at - last);
        thread.other_task_ids.push(0);
        last = at;
    }
    thread
}

#[test]
fn the_stall_overlay_shows_what_each_thread_ran_around_the_stall() {
    let mut app = app();
    // Task 5 stalls thread 2 from 2.5 s for 450 ms; before it, thread 2 ran task 4 now and
    // then; thread 3 polled task 6 busily all along, losing events to a full ring.
    let mut worker = Vec::new();
    for i in 0..10 {
        let at = 600 * MS + i * 180 * MS;
        worker.push((Kind::FlightEventPollStart, 4, at));
        worker.push((Kind::FlightEventPollEnd, 4, at + 20 * MS));
    }
    worker.push((Kind::FlightEventPollStart, 5, 2_500 * MS));
    worker.push((Kind::FlightEventPollEnd, 5, 2_950 * MS));
    let mut busy = Vec::new();
    for i in 0..40 {
        let at = 500 * MS + i * 60 * MS;
        busy.push((Kind::FlightEventPollStart, 6, at));
        busy.push((Kind::FlightEventPollEnd, 6, at + 50 * MS));
    }
    let mut neighbour = thread(3, &busy);
    neighbour.overflowed = 12;
    let mut update = crate::model::fixture::at(3 * SECOND + 500 * MS);
    update.stalls.push(v1::Stall {
        poll_started_ns: 2_500 * MS,
        flight: Some(v1::FlightWindow {
            from_ns: 500 * MS,
            to_ns: 2_950 * MS,
            threads: vec![thread(2, &worker), neighbour],
            events_left_out: 0,
        }),
        ..crate::model::fixture::stall(1, 5, v1::StallPhase::Ended, 450 * MS)
    });
    app.apply(&update);
    app.refresh();
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_snapshot!(draw(&mut app, 100, 30));
}
