use console_api as console;
use console_api::field::{Name, Value};
use taskscope_api::v1;

use super::{Converter, Settings};
use crate::model::Model;
use crate::model::judge::judge;
use crate::model::judge::policy::{FindingKind, Policy};

const MS: i64 = 1_000_000;
/// Wall clock of the first update, in ms after an arbitrary epoch.
const T0: i64 = 1_000_000;

fn at(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: (T0 + ms) / 1000,
        nanos: (((T0 + ms) % 1000) * MS) as i32,
    })
}

fn converter() -> Converter {
    Converter::new(Settings {
        label: "127.0.0.1:6669".into(),
        stall_threshold_ns: 100 * MS as u64,
    })
}

fn field(name: &str, value: Value) -> console::Field {
    console::Field {
        name: Some(Name::StrName(name.into())),
        value: Some(value),
        metadata_id: Some(console::MetaId { id: 1 }),
    }
}

/// A task as tokio's `runtime.spawn` span describes it.
fn task(span_id: u64, tokio_id: u64, kind: &str, line: u32) -> console::tasks::Task {
    console::tasks::Task {
        id: Some(console::Id { id: span_id }),
        metadata: Some(console::MetaId { id: 1 }),
        fields: vec![
            field("kind", Value::DebugVal(kind.into())),
            field("task.name", Value::DebugVal(String::new())),
            field("task.id", Value::U64Val(tokio_id)),
        ],
        location: Some(console::Location {
            file: Some("src/main.rs".into()),
            line: Some(line),
            column: Some(5),
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct Polls {
    polls: u64,
    started: Option<i64>,
    ended: Option<i64>,
}

fn stats(polls: Polls, clones: u64, drops: u64) -> console::tasks::Stats {
    console::tasks::Stats {
        created_at: at(0),
        waker_clones: clones,
        waker_drops: drops,
        poll_stats: Some(console::PollStats {
            polls: polls.polls,
            last_poll_started: polls.started.and_then(at),
            last_poll_ended: polls.ended.and_then(at),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn update(
    now: i64,
    new_tasks: Vec<console::tasks::Task>,
    stats: Vec<(u64, console::tasks::Stats)>,
) -> console::instrument::Update {
    console::instrument::Update {
        now: at(now),
        task_update: Some(console::tasks::TaskUpdate {
            new_tasks,
            stats_update: stats.into_iter().collect(),
            dropped_events: 0,
        }),
        ..Default::default()
    }
}

#[test]
fn the_first_update_is_a_snapshot_of_a_console_process_named_by_tokio_ids() {
    let mut converter = converter();
    let out = converter.convert(&update(
        10,
        vec![task(7, 42, "task", 12)],
        vec![(
            7,
            stats(
                Polls {
                    polls: 1,
                    started: Some(1),
                    ended: Some(2),
                },
                1,
                0,
            ),
        )],
    ));
    assert_eq!(out.snapshot, v1::SnapshotMark::SnapshotOnly as i32);
    let process = out.process.clone().unwrap();
    assert_eq!(process.source, v1::SourceKind::Console as i32);
    assert_eq!(process.instrumentation, v1::Instrumentation::Seen as i32);
    assert!(process.waker_tracking);
    assert!(!process.stack_capture.unwrap().enabled);
    let [spawned] = out.spawned.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(spawned.id, 42);
    assert_eq!(spawned.kind, v1::TaskKind::Task as i32);
    assert_eq!(spawned.name, "");
    let location = spawned.location.as_ref().unwrap();
    assert_eq!(
        (location.file.as_str(), location.line, location.column),
        ("src/main.rs", 12, 5)
    );
    let [stats] = out.stats.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(stats.id, 42);
    assert_eq!(stats.wakers, 1);
    assert_eq!(stats.state, v1::TaskState::Idle as i32);
    assert!(out.stalls.is_empty());
}

#[test]
fn a_poll_still_running_is_a_stall_from_the_threshold_on_and_ends_with_its_exact_duration() {
    let mut converter = converter();
    let running = Polls {
        polls: 1,
        started: Some(50),
        ended: None,
    };
    // Seen running 50 ms in: not yet a stall.
    let out = converter.convert(&update(
        100,
        vec![task(1, 1, "task", 3)],
        vec![(1, stats(running, 0, 0))],
    ));
    assert!(out.stalls.is_empty(), "{out:?}");
    assert_eq!(out.stats[0].state, v1::TaskState::Running as i32);
    // console sends nothing about the task while its numbers stay the same.
    let out = converter.convert(&update(1100, vec![], vec![]));
    let [stall] = out.stalls.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(stall.phase, v1::StallPhase::Started as i32);
    assert_eq!(stall.task_id, 1);
    assert_eq!(stall.duration_ns, 1050 * MS as u64);
    let out = converter.convert(&update(2100, vec![], vec![]));
    assert_eq!(out.stalls[0].phase, v1::StallPhase::Ongoing as i32);
    assert_eq!(out.stalls[0].stall_id, stall.stall_id);
    let ended = Polls {
        polls: 1,
        started: Some(50),
        ended: Some(2550),
    };
    let out = converter.convert(&update(3100, vec![], vec![(1, stats(ended, 0, 0))]));
    let [end] = out.stalls.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(end.phase, v1::StallPhase::Ended as i32);
    assert_eq!(end.stall_id, stall.stall_id);
    assert_eq!(end.duration_ns, 2500 * MS as u64);
    assert_eq!(out.stats[0].max_poll_ns, 2500 * MS as u64);
    // Nothing more about it afterwards.
    assert!(
        converter
            .convert(&update(4100, vec![], vec![]))
            .stalls
            .is_empty()
    );
}

#[test]
fn a_long_poll_between_two_publishes_is_reported_once_as_ended() {
    let mut converter = converter();
    converter.convert(&update(0, vec![task(1, 1, "task", 3)], vec![]));
    let polls = || Polls {
        polls: 2,
        started: Some(200),
        ended: Some(500),
    };
    let out = converter.convert(&update(1000, vec![], vec![(1, stats(polls(), 1, 0))]));
    let [stall] = out.stalls.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(stall.phase, v1::StallPhase::Ended as i32);
    assert_eq!(stall.duration_ns, 300 * MS as u64);
    let again = converter.convert(&update(2000, vec![], vec![(1, stats(polls(), 2, 0))]));
    assert!(again.stalls.is_empty(), "{again:?}");
}

#[test]
fn blocking_tasks_never_stall() {
    let mut converter = converter();
    let running = Polls {
        polls: 1,
        started: Some(1),
        ended: None,
    };
    converter.convert(&update(
        2,
        vec![task(1, 1, "blocking", 3)],
        vec![(1, stats(running, 0, 0))],
    ));
    assert!(
        converter
            .convert(&update(5000, vec![], vec![]))
            .stalls
            .is_empty()
    );
}

#[test]
fn a_dropped_task_ends_without_an_outcome_and_a_reused_span_id_ends_its_old_task() {
    let mut converter = converter();
    converter.convert(&update(
        0,
        vec![task(1, 10, "task", 3), task(2, 20, "task", 4)],
        vec![],
    ));
    let mut dropped = stats(
        Polls {
            polls: 1,
            started: Some(1),
            ended: Some(2),
        },
        0,
        0,
    );
    dropped.dropped_at = at(3);
    let out = converter.convert(&update(1000, vec![], vec![(1, dropped)]));
    let [ended] = out.ended.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(ended.id, 10);
    assert_eq!(ended.outcome, v1::Outcome::Unspecified as i32);
    // Span 2 closed and its id went to a new task before console said so.
    let out = converter.convert(&update(2000, vec![task(2, 30, "task", 5)], vec![]));
    assert_eq!(out.ended.iter().map(|e| e.id).collect::<Vec<_>>(), [20]);
    assert_eq!(out.spawned[0].id, 30);
}

#[test]
fn folded_into_the_model_the_judge_finds_the_stall_and_the_lost_waker() {
    let mut converter = converter();
    let mut model = Model::new();
    let idle = || Polls {
        polls: 1,
        started: Some(1),
        ended: Some(2),
    };
    let running = Polls {
        polls: 3,
        started: Some(100),
        ended: Some(50),
    };
    let first = converter.convert(&update(
        500,
        vec![task(1, 1, "task", 3), task(2, 2, "task", 4)],
        // Task 1 kept no waker; task 2 has one clone left (a healthy wait).
        vec![(1, stats(idle(), 0, 0)), (2, stats(running, 2, 1))],
    ));
    model.apply(&first);
    for now in [1500, 2500, 3500] {
        model.apply(&converter.convert(&update(now, vec![], vec![])));
    }
    let judgement = judge([&model], &Policy::default());
    let kinds: Vec<_> = judgement.findings.iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&FindingKind::Stall), "{judgement:#?}");
    assert!(kinds.contains(&FindingKind::LostWaker), "{judgement:#?}");
    let stall = judgement
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Stall)
        .unwrap();
    assert_eq!(stall.spawn_location, "src/main.rs:4:5");
    let lost = judgement
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::LostWaker)
        .unwrap();
    assert_eq!(lost.spawn_location, "src/main.rs:3:5");
}

#[test]
fn a_followed_tasks_details_bring_its_poll_histogram_and_longest_poll() {
    use hdrhistogram::Histogram;
    use hdrhistogram::serialization::{Serializer, V2Serializer};

    let mut converter = converter();
    let polls = || Polls {
        polls: 3,
        started: Some(1),
        ended: Some(2),
    };
    converter.convert(&update(
        10,
        vec![task(7, 42, "task", 3), task(8, 43, "blocking", 4)],
        vec![(7, stats(polls(), 1, 0))],
    ));
    let (follow, stop) = converter.take_followed();
    assert_eq!(follow, [7], "blocking tasks are not followed");
    assert!(stop.is_empty());
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 2).unwrap();
    for nanos in [2_000, 2_000, 40_000_000] {
        histogram.record(nanos).unwrap();
    }
    let mut raw = Vec::new();
    V2Serializer::new().serialize(&histogram, &mut raw).unwrap();
    let details = console::tasks::TaskDetails {
        task_id: Some(console::Id { id: 7 }),
        now: at(20),
        poll_times_histogram: Some(console::tasks::task_details::PollTimesHistogram::Histogram(
            console::tasks::DurationHistogram {
                raw_histogram: raw,
                max_value: 1_000_000_000,
                high_outliers: 0,
                highest_outlier: None,
            },
        )),
        scheduled_times_histogram: None,
    };
    let out = converter.details(&details).unwrap();
    let [sent] = out.stats.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(sent.id, 42);
    assert_eq!(sent.polls, 3);
    assert_eq!(sent.poll_histogram.iter().sum::<u32>(), 3);
    assert!(sent.max_poll_ns >= 40_000_000, "{sent:?}");
    // Later statistics keep the histogram.
    let out = converter.convert(&update(30, vec![], vec![(7, stats(polls(), 2, 1))]));
    assert_eq!(out.stats[0].poll_histogram.iter().sum::<u32>(), 3);
}
