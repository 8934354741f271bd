use taskscope_api::v1;

use super::*;

/// A window of two threads: on thread 1 task 5 spawns task 7 and wakes task 6, then task
/// 6 stalls from 400 to 900; on thread 2 task 7 polls twice and ends.
fn stalled() -> v1::Stall {
    let column = |events: &[(Kind, u64, u64, u64)], from: u64| {
        let mut thread = v1::FlightThread::default();
        let mut last = from;
        for &(kind, task, at, other) in events {
            thread.kinds.push(kind as i32);
            thread.task_ids.push(task);
            thread.at_deltas_ns.push(at - last);
            thread.other_task_ids.push(other);
            last = at;
        }
        thread
    };
    let one = [
        (Kind::FlightEventPollStart, 5, 100, 0),
        (Kind::FlightEventSpawn, 7, 150, 5),
        (Kind::FlightEventWake, 6, 160, 5),
        (Kind::FlightEventPollEnd, 5, 200, 0),
        (Kind::FlightEventPollStart, 6, 400, 0),
        (Kind::FlightEventPollEnd, 6, 900, 0),
    ];
    let two = [
        (Kind::FlightEventPollStart, 7, 300, 0),
        (Kind::FlightEventPollEnd, 7, 350, 0),
        (Kind::FlightEventPollStart, 7, 500, 0),
        (Kind::FlightEventEnd, 7, 540, 0),
        (Kind::FlightEventPollEnd, 7, 550, 0),
    ];
    let mut threads = vec![column(&one, 0), column(&two, 0)];
    threads[0].thread = 1;
    threads[0].name = "worker".into();
    threads[1].thread = 2;
    threads[1].name = "worker".into();
    threads[1].overflowed = 3;
    v1::Stall {
        stall_id: 9,
        task_id: 6,
        thread: 1,
        poll_started_ns: 400,
        duration_ns: 500,
        flight: Some(v1::FlightWindow {
            from_ns: 0,
            to_ns: 900,
            threads,
            events_left_out: 0,
        }),
        ..Default::default()
    }
}

#[test]
fn polls_pair_up_per_thread_and_the_stall_sits_on_its_thread() {
    let timeline = Timeline::of_stall(42, &stalled(), &TaskNames::default()).unwrap();
    let polls: Vec<_> = timeline
        .slices
        .iter()
        .map(|s| (s.thread, s.task_id, s.start_ns, s.end_ns))
        .collect();
    assert_eq!(
        polls,
        [
            (1, 6, 400, 900),
            (1, 5, 100, 200),
            (1, 6, 400, 900),
            (2, 7, 300, 350),
            (2, 7, 500, 550)
        ]
    );
    assert!(matches!(
        timeline.slices[0].what,
        SliceKind::Stall { stall_id: 9, .. }
    ));
    assert_eq!(timeline.tracks[1].overflowed, 3);
}

#[test]
fn spawns_and_wakes_point_at_the_next_poll_of_their_task() {
    let timeline = Timeline::of_stall(42, &stalled(), &TaskNames::default()).unwrap();
    assert_eq!(
        timeline.flows,
        [
            Flow {
                what: FlowKind::Spawn,
                from_thread: 1,
                from_ns: 150,
                to_thread: 2,
                to_ns: 300,
                task_id: 7
            },
            Flow {
                what: FlowKind::Wake,
                from_thread: 1,
                from_ns: 160,
                to_thread: 1,
                to_ns: 400,
                task_id: 6
            },
        ]
    );
    let seven = timeline.lives.iter().find(|l| l.task_id == 7).unwrap();
    assert_eq!((seven.start_ns, seven.end_ns), (150, 540));
}

#[test]
fn tasks_are_named_by_name_else_by_spawn_site() {
    let mut names = TaskNames::default();
    names.learn(&v1::Update {
        spawned: vec![
            v1::TaskSpawned {
                id: 6,
                location: Some(v1::Location {
                    file: "/home/me/app/src/jobs/report.rs".into(),
                    line: 12,
                    column: 5,
                }),
                ..Default::default()
            },
            v1::TaskSpawned {
                id: 7,
                name: "ticker".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    });
    assert_eq!(names.of(6), "jobs/report.rs:12");
    assert_eq!(names.of(7), "ticker");
    assert_eq!(names.of(8), "task 8");
    // Short tasks the probe counted by site are named by their site too.
    names.learn(&v1::Update {
        folded: vec![v1::FoldedTasks {
            location: Some(v1::Location {
                file: "/home/me/app/src/pool.rs".into(),
                line: 40,
                column: 9,
            }),
            tasks: 900,
            ids: vec![8, 9],
            ..Default::default()
        }],
        ..Default::default()
    });
    assert_eq!(names.of(8), "src/pool.rs:40");
    assert_eq!(names.of(9), "src/pool.rs:40");
}

#[test]
fn the_written_trace_is_one_json_document_with_every_event() {
    let timeline = Timeline::of_stall(42, &stalled(), &TaskNames::default()).unwrap();
    let mut writer = chrome_json::TraceWriter::new(Vec::new()).unwrap();
    writer.process(42, "app").unwrap();
    writer.timeline(&timeline).unwrap();
    let bytes = writer.finish().unwrap();
    let trace: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let count = |ph: &str| events.iter().filter(|e| e["ph"] == ph).count();
    assert_eq!(count("X"), 5);
    assert_eq!((count("s"), count("f")), (2, 2));
    assert_eq!(count("b"), timeline.lives.len());
}
