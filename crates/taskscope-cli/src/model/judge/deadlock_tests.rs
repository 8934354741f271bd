//! The deadlock rule against synthetic wait graphs: the cycles it must report, and the
//! waits that look alike and are none.

use taskscope_api::v1::{self, Outcome as WireOutcome, TaskState};

use super::finding::Detail;
use super::policy::{FindingKind, Policy};
use super::*;
use crate::model::fixture::*;

const MUTEX_A: u64 = 1;
const MUTEX_B: u64 = 2;

fn resource(id: u64, kind: &str, holders: &[(u64, u64)], capacity: u64) -> v1::Resource {
    v1::Resource {
        id,
        kind: kind.into(),
        location: Some(v1::Location {
            file: "src/db.rs".into(),
            line: 10 + id as u32,
            column: 5,
        }),
        holders: holders
            .iter()
            .map(|&(task_id, since_ns)| v1::Holder {
                task_id,
                since_ns,
                count: 1,
            })
            .collect(),
        capacity,
        exact: true,
    }
}

fn waits_on(task_id: u64, resource_id: u64, since_ns: u64) -> v1::TaskWait {
    v1::TaskWait {
        task_id,
        resource_id,
        joins_task: 0,
        since_ns,
    }
}

fn joins(task_id: u64, other: u64, since_ns: u64) -> v1::TaskWait {
    v1::TaskWait {
        task_id,
        resource_id: 0,
        joins_task: other,
        since_ns,
    }
}

/// Tasks 1 and 2, idle after one poll each, in the graph `graph` from 100 ms on.
fn two_tasks(graph: v1::WaitGraph) -> Model {
    let mut model = Model::new();
    let mut update = start(7, "app");
    for id in [1, 2] {
        update
            .spawned
            .push(spawned(id, &format!("src/main.rs:{id}0:5")));
        update.stats.push(stats(id, TaskState::Idle, 1, 1));
    }
    model.apply(&update);
    let mut update = at(100 * MS);
    update.wait_graph = Some(graph);
    model.apply(&update);
    model
}

/// The lock-order inversion: 1 holds A and waits on B, 2 holds B and waits on A.
fn inversion() -> v1::WaitGraph {
    v1::WaitGraph {
        resources: vec![
            resource(MUTEX_A, "Mutex", &[(1, 50 * MS)], 1),
            resource(MUTEX_B, "Mutex", &[(2, 60 * MS)], 1),
        ],
        waits: vec![waits_on(1, MUTEX_B, 70 * MS), waits_on(2, MUTEX_A, 80 * MS)],
        left_out: 0,
    }
}

fn deadlocks(model: &Model) -> Vec<Vec<u64>> {
    judge([model], &Policy::default())
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Deadlock)
        .map(|f| match &f.detail {
            Detail::Deadlock { tasks } => tasks.iter().map(|t| t.task_id).collect(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_lock_order_inversion_standing_past_the_threshold_is_one_deadlock_naming_both_tasks() {
    let mut model = two_tasks(inversion());
    assert!(deadlocks(&model).is_empty(), "standing 20 ms only");
    model.apply(&at(1200 * MS));
    assert_eq!(deadlocks(&model), [vec![1, 2]]);
    let judgement = judge([&model], &Policy::default());
    let finding = &judgement.findings[0];
    assert_eq!(finding.spawn_location, "src/main.rs:10:5");
    let Detail::Deadlock { tasks } = &finding.detail else {
        panic!()
    };
    assert_eq!(tasks[0].waits_for, 2);
    assert!(
        tasks[0]
            .waits_on
            .starts_with("`Mutex` created at src/db.rs:12:5, held by task 2"),
        "{}",
        tasks[0].waits_on
    );
    assert!(
        finding
            .message
            .contains("task 2 (spawned at src/main.rs:20:5)")
    );
}

#[test]
fn the_threshold_is_the_policys() {
    let mut model = two_tasks(inversion());
    model.apply(&at(1200 * MS));
    let mut policy = Policy::default();
    policy.deadlock_after_ns = 5_000 * MS;
    assert!(judge([&model], &policy).findings.is_empty());
}

#[test]
fn two_tasks_joined_on_each_other_are_a_deadlock() {
    let graph = v1::WaitGraph {
        resources: vec![],
        waits: vec![joins(1, 2, 10 * MS), joins(2, 1, 20 * MS)],
        left_out: 0,
    };
    let mut model = two_tasks(graph);
    model.apply(&at(2000 * MS));
    assert_eq!(deadlocks(&model), [vec![1, 2]]);
}

#[test]
fn a_semaphores_last_permit_held_by_a_task_joining_the_waiter_is_a_deadlock() {
    let graph = v1::WaitGraph {
        resources: vec![resource(MUTEX_A, "Semaphore", &[(1, 10 * MS)], 1)],
        waits: vec![joins(1, 2, 20 * MS), waits_on(2, MUTEX_A, 30 * MS)],
        left_out: 0,
    };
    let mut model = two_tasks(graph);
    model.apply(&at(2000 * MS));
    assert_eq!(deadlocks(&model), [vec![1, 2]]);
}

#[test]
fn a_contended_lock_is_no_deadlock() {
    // 2 waits on A, held by 1, which waits on nothing the probe sees (it runs, or sleeps).
    let graph = v1::WaitGraph {
        resources: vec![resource(MUTEX_A, "Mutex", &[(1, 10 * MS)], 1)],
        waits: vec![waits_on(2, MUTEX_A, 20 * MS)],
        left_out: 0,
    };
    let mut model = two_tasks(graph);
    model.apply(&at(5000 * MS));
    assert!(deadlocks(&model).is_empty());
}

#[test]
fn a_semaphore_with_one_holder_free_lets_its_waiters_on() {
    // 1 and 3 hold permits; 1 waits on 2, which waits for a permit: 3 may still give back.
    let graph = v1::WaitGraph {
        resources: vec![resource(
            MUTEX_A,
            "Semaphore",
            &[(1, 10 * MS), (3, 10 * MS)],
            2,
        )],
        waits: vec![joins(1, 2, 20 * MS), waits_on(2, MUTEX_A, 30 * MS)],
        left_out: 0,
    };
    let mut model = two_tasks(graph);
    model.apply(&at(5000 * MS));
    assert!(deadlocks(&model).is_empty());
}

#[test]
fn a_cycle_through_a_guessed_holder_is_no_deadlock() {
    let mut graph = inversion();
    graph.resources[0].exact = false;
    let mut model = two_tasks(graph);
    model.apply(&at(5000 * MS));
    assert!(deadlocks(&model).is_empty());
}

#[test]
fn a_cycle_that_resolves_is_no_deadlock_however_long_it_stood() {
    let mut model = two_tasks(inversion());
    model.apply(&at(1500 * MS));
    assert_eq!(deadlocks(&model).len(), 1);
    // A timeout fires: task 1 is polled again and gives up; the graph empties.
    let mut update = at(1600 * MS);
    update.stats.push(stats(1, TaskState::Idle, 2, 1));
    update.wait_graph = Some(v1::WaitGraph::default());
    model.apply(&update);
    assert!(deadlocks(&model).is_empty());
}

#[test]
fn a_cycle_left_for_an_unseen_wait_and_then_cancelled_at_shutdown_is_no_deadlock() {
    let mut model = two_tasks(inversion());
    model.apply(&at(1500 * MS));
    // Task 1 gives up and parks on something the probe does not see.
    let mut update = at(1600 * MS);
    update.stats.push(stats(1, TaskState::Idle, 2, 1));
    update.wait_graph = Some(v1::WaitGraph::default());
    model.apply(&update);
    let mut update = at(3000 * MS);
    for id in [1, 2] {
        update
            .ended
            .push(ended(id, WireOutcome::CancelledAtShutdown, None));
    }
    model.apply(&update);
    assert!(deadlocks(&model).is_empty());
}

/// What a `taskscope::join` cycle looks like under `check`: a task dump wakes both tasks,
/// which are polled again and wait where they were (the wait keeps its start); at shutdown
/// tokio enters one task's span to drop its future, which shows as a poll and empties the
/// graph just before the ends arrive, with that enter taken back.
#[test]
fn polls_that_leave_a_cycle_where_it_was_and_the_drop_at_shutdown_are_no_progress() {
    let graph = v1::WaitGraph {
        resources: vec![],
        waits: vec![joins(1, 2, 10 * MS), joins(2, 1, 20 * MS)],
        left_out: 0,
    };
    let mut model = two_tasks(graph);
    // The dump's wake-ups: both polled again, their waits unchanged (no graph sent).
    let mut update = at(300 * MS);
    update.stats.push(stats(1, TaskState::Idle, 2, 1));
    update.stats.push(stats(2, TaskState::Idle, 2, 1));
    model.apply(&update);
    // Shutdown: task 1 is inside the enter that drops its future.
    let mut update = at(4000 * MS);
    update.stats.push(stats(1, TaskState::Running, 3, 1));
    update.wait_graph = Some(v1::WaitGraph::default());
    model.apply(&update);
    let mut update = at(4010 * MS);
    for id in [1, 2] {
        let mut end = ended(
            id,
            WireOutcome::CancelledAtShutdown,
            Some(stats(id, TaskState::Idle, 2, 1)),
        );
        end.ended_ns = 4005 * MS;
        update.ended.push(end);
    }
    model.apply(&update);
    assert_eq!(deadlocks(&model), [vec![1, 2]]);
}

#[test]
fn a_cycle_cut_short_by_the_runtimes_shutdown_stood_until_then() {
    let mut model = two_tasks(inversion());
    let mut update = at(1500 * MS);
    for id in [1, 2] {
        let mut end = ended(id, WireOutcome::CancelledAtShutdown, None);
        end.ended_ns = 1400 * MS;
        update.ended.push(end);
    }
    update.wait_graph = Some(v1::WaitGraph::default());
    model.apply(&update);
    assert_eq!(deadlocks(&model), [vec![1, 2]]);
    let kinds: Vec<_> = judge([&model], &Policy::default())
        .findings
        .iter()
        .map(|f| f.kind)
        .collect();
    assert_eq!(
        kinds,
        [FindingKind::Deadlock],
        "its tasks are not leaks too"
    );
}

#[test]
fn wait_facts_the_probe_dropped_are_a_note_that_a_deadlock_may_be_missed() {
    let mut model = two_tasks(v1::WaitGraph::default());
    let quiet = judge([&model], &Policy::default());
    assert!(!quiet.notes.iter().any(|n| n.contains("locks, permits")));
    let mut update = at(200 * MS);
    update.drops = Some(v1::Drops {
        wait_events: 12,
        ..Default::default()
    });
    model.apply(&update);
    let judgement = judge([&model], &Policy::default());
    assert!(
        judgement.notes.iter().any(|n| n
            .contains("dropped 12 facts about locks, permits and joins")
            && n.contains("a deadlock may be missed")),
        "{:?}",
        judgement.notes
    );
}
