use taskscope_api::v1::{self, Outcome as WireOutcome, StallPhase, TaskState};

use super::allowance::Allowance;
use super::finding::{Descendant, Detail};
use super::policy::{FindingKind, Policy, Severity};
use super::*;
use crate::model::fixture::*;

/// A process that ran to a clean exit after `updates`.
fn exited(updates: Vec<v1::Update>) -> Model {
    let mut model = Model::new();
    for update in &updates {
        model.apply(update);
    }
    let mut last = at(model.now_ns() + 10 * MS);
    last.process_exited = true;
    model.apply(&last);
    model.finish();
    model
}

fn one(update: v1::Update) -> Model {
    exited(vec![update])
}

/// A task that ran at `location` and completed.
fn completed(update: &mut v1::Update, id: u64, location: &str) {
    update.spawned.push(spawned(id, location));
    update.ended.push(ended(id, WireOutcome::Completed, None));
}

fn kinds(judgement: &Judgement) -> Vec<FindingKind> {
    judgement.findings.iter().map(|f| f.kind).collect()
}

/// A task pending at shutdown with these statistics.
fn cancelled_at_shutdown(id: u64, state: TaskState, polls: u64, wakers: i64) -> v1::Update {
    let mut update = start(7, "app");
    update.spawned.push(spawned(id, "src/main.rs:10:5"));
    update.ended.push(ended(
        id,
        WireOutcome::CancelledAtShutdown,
        Some(stats(id, state, polls, wakers)),
    ));
    update
}

#[test]
fn a_stall_past_the_threshold_is_an_error_at_its_spawn_site() {
    let mut update = start(7, "app");
    completed(&mut update, 1, "src/bin/app.rs:12:5");
    update.stalls.push(stall(1, 1, StallPhase::Ended, 612 * MS));
    let judgement = judge([&one(update)], &Policy::default());
    let [finding] = judgement.findings.as_slice() else {
        panic!("{judgement:?}")
    };
    assert_eq!(finding.kind, FindingKind::Stall);
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(finding.spawn_location, "src/bin/app.rs:12:5");
    assert_eq!(finding.pid, 7);
    let Detail::Stall {
        duration_ns,
        thread,
        ..
    } = &finding.detail
    else {
        panic!()
    };
    assert_eq!(
        (*duration_ns, thread.as_str()),
        (612 * MS, "tokio-runtime-worker")
    );
    assert!(finding.message.contains("612.0ms"), "{}", finding.message);
    assert!(judgement.has_errors());
}

#[test]
fn a_stall_under_the_threshold_or_of_a_blocking_task_is_not_a_finding() {
    let mut update = start(7, "app");
    completed(&mut update, 1, "src/main.rs:1:1");
    let mut blocking = spawned(2, "src/main.rs:2:1");
    blocking.kind = v1::TaskKind::Blocking as i32;
    update.spawned.push(blocking);
    update.stalls.push(stall(1, 1, StallPhase::Ended, 150 * MS));
    update
        .stalls
        .push(stall(2, 2, StallPhase::Ended, 5_000 * MS));
    let mut policy = Policy::default();
    policy.stall_threshold_ns = 200 * MS;
    assert!(judge([&one(update)], &policy).findings.is_empty());
}

#[test]
fn many_stalls_from_one_site_are_one_finding_with_the_worst_as_example() {
    let mut update = start(7, "app");
    for id in 1..=3 {
        completed(&mut update, id, "src/main.rs:10:5");
        update
            .stalls
            .push(stall(id, id, StallPhase::Ended, id * 200 * MS));
    }
    let judgement = judge([&one(update)], &Policy::default());
    let [finding] = judgement.findings.as_slice() else {
        panic!("{judgement:?}")
    };
    assert_eq!((finding.count, finding.task_id), (3, 3));
    assert!(
        finding.message.starts_with("3 times"),
        "{}",
        finding.message
    );
}

#[test]
fn a_stall_still_running_when_the_recording_was_cut_counts_with_its_time_so_far() {
    let mut update = start(7, "app");
    update.spawned.push(spawned(1, "src/main.rs:10:5"));
    let mut started = stall(1, 1, StallPhase::Started, 100 * MS);
    started.poll_started_ns = 0;
    update.stalls.push(started);
    let mut model = Model::new();
    model.apply(&update);
    model.apply(&at(900 * MS));
    model.finish();
    let judgement = judge([&model], &Policy::default());
    let Detail::Stall { duration_ns, .. } = judgement.findings[0].detail else {
        panic!()
    };
    assert_eq!(duration_ns, 900 * MS);
    assert!(
        judgement.notes.iter().any(|n| n.contains("cut")),
        "{:?}",
        judgement.notes
    );
}

#[test]
fn a_stall_points_at_the_innermost_user_frame() {
    let mut update = start(7, "app");
    completed(&mut update, 1, "src/main.rs:10:5");
    let mut s = stall(1, 1, StallPhase::Ended, 612 * MS);
    s.samples.push(v1::StackSample {
        at_ns: 0,
        frames: vec![
            frame(
                "std::thread::sleep",
                "/rustc/abc/library/std/src/thread/mod.rs:1:1",
            ),
            frame("app::work", "src/main.rs:20:9"),
            frame("app::main::{{closure}}", "src/main.rs:11:5"),
            frame(
                "tokio::runtime::task::core::Core::poll",
                "/root/.cargo/registry/src/x/tokio/src/core.rs:1:1",
            ),
        ],
        ..Default::default()
    });
    update.stalls.push(s);
    let judgement = judge([&one(update)], &Policy::default());
    let finding = &judgement.findings[0];
    assert_eq!(finding.source_location(), "src/main.rs:20:9");
    let Detail::Stall { backtrace, .. } = &finding.detail else {
        panic!()
    };
    assert_eq!(&*backtrace[0].function, "app::work");
    assert_eq!(backtrace.len(), 3);
    assert!(
        finding.message.contains("std::thread::sleep"),
        "{}",
        finding.message
    );
}

#[test]
fn a_task_with_no_waker_left_at_shutdown_is_a_lost_waker() {
    let judgement = judge(
        [&one(cancelled_at_shutdown(1, TaskState::Idle, 1, 0))],
        &Policy::default(),
    );
    assert_eq!(kinds(&judgement), [FindingKind::LostWaker]);
    assert_eq!(judgement.findings[0].severity, Severity::Error);
}

#[test]
fn a_task_with_a_waker_at_shutdown_is_alive_at_shutdown() {
    let judgement = judge(
        [&one(cancelled_at_shutdown(1, TaskState::Idle, 1, 1))],
        &Policy::default(),
    );
    assert_eq!(kinds(&judgement), [FindingKind::AliveAtShutdown]);
}

#[test]
fn without_waker_tracking_nothing_is_called_a_lost_waker() {
    let mut update = cancelled_at_shutdown(1, TaskState::Idle, 1, 0);
    update.process.as_mut().unwrap().waker_tracking = false;
    let judgement = judge([&one(update)], &Policy::default());
    assert_eq!(kinds(&judgement), [FindingKind::AliveAtShutdown]);
    assert!(
        judgement
            .notes
            .iter()
            .any(|n| n.contains("TASKSCOPE_WAKERS"))
    );
}

/// How tasks waiting on tokio's primitives look to the probe: the primitive keeps a clone
/// of the waker until it fires (`select!` one per branch). tokio-console's lost-waker lint
/// misfired on states like the last rows (woken by value, running, miscounted, never
/// polled): none of them may be reported.
#[test]
fn tasks_that_can_still_be_woken_are_never_lost_wakers() {
    let waits: [(&str, TaskState, u64, i64); 11] = [
        ("mpsc recv", TaskState::Idle, 4, 1),
        ("oneshot", TaskState::Idle, 1, 1),
        ("Notify", TaskState::Idle, 2, 1),
        ("sleep", TaskState::Idle, 1, 1),
        ("select! over three", TaskState::Idle, 5, 3),
        ("JoinSet::join_next", TaskState::Idle, 3, 2),
        ("Mutex::lock", TaskState::Idle, 1, 1),
        ("TcpListener::accept", TaskState::Idle, 9, 1),
        ("woken by value, queued", TaskState::Scheduled, 3, 0),
        ("running now", TaskState::Running, 3, 0),
        ("miscounted", TaskState::Idle, 3, -1),
    ];
    for (what, state, polls, wakers) in waits {
        let judgement = judge(
            [&one(cancelled_at_shutdown(1, state, polls, wakers))],
            &Policy::default(),
        );
        assert!(
            !kinds(&judgement).contains(&FindingKind::LostWaker),
            "{what}: {judgement:?}"
        );
    }
    let never_polled = judge(
        [&one(cancelled_at_shutdown(1, TaskState::Idle, 0, 0))],
        &Policy::default(),
    );
    assert!(!kinds(&never_polled).contains(&FindingKind::LostWaker));
}

#[test]
fn tasks_that_ended_on_their_own_or_were_aborted_are_not_leaks() {
    let mut update = start(7, "app");
    for (id, outcome) in [(1, WireOutcome::Completed), (2, WireOutcome::Cancelled)] {
        update.spawned.push(spawned(id, "src/main.rs:10:5"));
        update
            .ended
            .push(ended(id, outcome, Some(stats(id, TaskState::Idle, 1, 0))));
    }
    let judgement = judge([&one(update)], &Policy::default());
    assert!(judgement.findings.is_empty(), "{judgement:?}");
    assert_eq!(
        judgement.summary,
        Summary {
            tasks: 2,
            completed: 1,
            cancelled: 1,
            panicked: 0
        }
    );
}

#[test]
fn blocking_and_block_on_tasks_never_leak() {
    let mut update = start(7, "app");
    for (id, kind) in [(1, v1::TaskKind::Blocking), (2, v1::TaskKind::BlockOn)] {
        let mut task = spawned(id, "src/main.rs:10:5");
        task.kind = kind as i32;
        update.spawned.push(task);
        update.stats.push(stats(id, TaskState::Idle, 1, 0));
    }
    assert!(
        judge([&one(update)], &Policy::default())
            .findings
            .is_empty()
    );
}

#[test]
fn a_task_left_pending_at_a_clean_exit_is_alive_at_shutdown() {
    let mut update = start(7, "app");
    update.spawned.push(spawned(1, "src/main.rs:10:5"));
    update.stats.push(stats(1, TaskState::Idle, 1, 1));
    let judgement = judge([&one(update)], &Policy::default());
    assert_eq!(kinds(&judgement), [FindingKind::AliveAtShutdown]);
    assert!(judgement.findings[0].message.contains("process exited"));
}

#[test]
fn a_live_task_with_no_waker_is_only_lost_after_a_grace_period() {
    let mut update = start(7, "app");
    update.spawned.push(spawned(1, "src/main.rs:10:5"));
    let mut s = stats(1, TaskState::Idle, 1, 0);
    s.last_poll_end_ns = 10 * MS;
    update.stats.push(s);
    let mut model = Model::new();
    model.apply(&update);
    model.apply(&at(500 * MS));
    assert!(judge([&model], &Policy::default()).findings.is_empty());
    model.apply(&at(2_000 * MS));
    assert_eq!(
        kinds(&judge([&model], &Policy::default())),
        [FindingKind::LostWaker]
    );
}

#[test]
fn a_leak_names_the_test_whose_runtime_it_outlived() {
    let mut update = start(7, "/target/debug/deps/leaky_tests-0123456789abcdef");
    update.runtime = Some(threads(&[
        (1, "tests::leaks_a_task"),
        (2, "tokio-runtime-worker"),
    ]));
    // Spawned by the test body, on the test's thread.
    let mut direct = spawned(1, "tests/leaky.rs:8:5");
    direct.spawn_thread = 1;
    // Spawned by that task from a worker thread.
    let mut child = spawned(2, "tests/leaky.rs:9:9");
    child.parent_id = 1;
    update.spawned.extend([direct, child]);
    for id in [1, 2] {
        update.ended.push(ended(
            id,
            WireOutcome::CancelledAtShutdown,
            Some(stats(id, TaskState::Idle, 1, 1)),
        ));
    }
    let judgement = judge([&one(update)], &Policy::default());
    // One root cause: the child is folded into the task the test spawned.
    let [finding] = judgement.findings.as_slice() else {
        panic!("{judgement:?}")
    };
    assert_eq!(finding.spawn_location, "tests/leaky.rs:8:5");
    assert_eq!(finding.test.as_deref(), Some("tests::leaks_a_task"));
    assert!(finding.message.contains("tests::leaks_a_task"));
    assert_eq!(
        finding.detail,
        Detail::AliveAtShutdown {
            descendants: vec![Descendant {
                spawn_location: "tests/leaky.rs:9:9".into(),
                count: 1
            }]
        }
    );
    assert!(
        finding
            .message
            .contains("and 1 task it spawned, still alive: tests/leaky.rs:9:9 ×1"),
        "{}",
        finding.message
    );
}

#[test]
fn a_leak_found_through_the_runtimes_block_on_task_names_its_test() {
    let mut update = start(7, "leaky_tests-0123456789abcdef");
    update.runtime = Some(threads(&[(1, "leaks_a_task"), (2, "tokio-runtime-worker")]));
    let mut body = spawned(1, "tests/leaky.rs:5:1");
    body.kind = v1::TaskKind::BlockOn as i32;
    body.spawn_thread = 1;
    update
        .spawned
        .extend([body, spawned(2, "tests/leaky.rs:9:9")]);
    update.ended.push(ended(
        2,
        WireOutcome::CancelledAtShutdown,
        Some(stats(2, TaskState::Idle, 1, 1)),
    ));
    let judgement = judge([&one(update)], &Policy::default());
    assert_eq!(judgement.findings[0].test.as_deref(), Some("leaks_a_task"));
}

#[test]
fn an_ordinary_app_thread_is_not_taken_for_a_test() {
    let mut update = start(7, "server");
    update.runtime = Some(threads(&[(1, "my-pool")]));
    let mut task = spawned(1, "src/main.rs:10:5");
    task.spawn_thread = 1;
    update.spawned.push(task);
    update.ended.push(ended(
        1,
        WireOutcome::CancelledAtShutdown,
        Some(stats(1, TaskState::Idle, 1, 1)),
    ));
    let judgement = judge([&one(update)], &Policy::default());
    assert_eq!(judgement.findings[0].test, None);
}

#[test]
fn a_panic_is_a_warning_with_its_message() {
    let mut update = start(7, "app");
    update.spawned.push(spawned(1, "src/main.rs:10:5"));
    let mut end = ended(1, WireOutcome::Panicked, None);
    end.panic_message = "index out of bounds".into();
    end.panic_location = "src/main.rs:12:9".into();
    update.ended.push(end);
    let judgement = judge([&one(update)], &Policy::default());
    let finding = &judgement.findings[0];
    assert_eq!(
        (finding.kind, finding.severity),
        (FindingKind::Panic, Severity::Warning)
    );
    assert!(
        finding.message.contains("index out of bounds")
            && finding.message.contains("src/main.rs:12:9")
    );
    assert!(!judgement.has_errors());
    assert_eq!(judgement.summary.panicked, 1);
}

#[test]
fn severities_move_with_fail_on_and_warn_on() {
    let mut update = cancelled_at_shutdown(1, TaskState::Idle, 1, 1);
    update.spawned.push(spawned(2, "src/main.rs:20:5"));
    update.ended.push(ended(2, WireOutcome::Panicked, None));
    let model = one(update);
    let mut policy = Policy::default();
    policy.fail_on(&[FindingKind::Panic]);
    policy.warn_on(&[FindingKind::AliveAtShutdown]);
    let judgement = judge([&model], &policy);
    let severity = |kind| {
        judgement
            .findings
            .iter()
            .find(|f| f.kind == kind)
            .unwrap()
            .severity
    };
    assert_eq!(severity(FindingKind::Panic), Severity::Error);
    assert_eq!(severity(FindingKind::AliveAtShutdown), Severity::Warning);
    assert_eq!(
        judgement.findings[0].kind,
        FindingKind::Panic,
        "errors come first"
    );
}

fn allow(policy: &mut Policy, text: &str) {
    policy.allow(Allowance::parse(text, "--allow").unwrap());
}

#[test]
fn allowed_spawn_sites_are_dropped_and_counted() {
    let model = one(cancelled_at_shutdown(1, TaskState::Idle, 1, 1));
    let mut policy = Policy::default();
    allow(&mut policy, "src/main.rs:*");
    let judgement = judge([&model], &policy);
    assert!(judgement.findings.is_empty());
    assert_eq!(judgement.allowed, 1);
    assert!(judgement.unused_allowances.is_empty());
}

#[test]
fn an_allowance_for_a_leak_does_not_hide_a_stall_at_the_same_site() {
    let mut update = cancelled_at_shutdown(1, TaskState::Idle, 1, 1);
    update.stalls.push(stall(1, 1, StallPhase::Ended, 300 * MS));
    let model = one(update);
    let mut policy = Policy::default();
    allow(&mut policy, "alive_at_shutdown@src/main.rs:*");
    let judgement = judge([&model], &policy);
    assert_eq!(kinds(&judgement), [FindingKind::Stall]);
    assert_eq!(judgement.allowed, 1);
}

#[test]
fn allowances_that_accept_nothing_are_reported_and_may_fail() {
    let model = one(cancelled_at_shutdown(1, TaskState::Idle, 1, 1));
    let mut policy = Policy::default();
    allow(&mut policy, "alive_at_shutdown@src/main.rs:*");
    allow(&mut policy, "stall@src/main.rs:*");
    allow(&mut policy, "alive_at_shutdown@src/main.rs:*#some_test");
    let judgement = judge([&model], &policy);
    assert!(judgement.findings.is_empty());
    let unused: Vec<&str> = judgement
        .unused_allowances
        .iter()
        .map(|u| u.allowance.as_str())
        .collect();
    assert_eq!(
        unused,
        [
            "stall@src/main.rs:*",
            "alive_at_shutdown@src/main.rs:*#some_test"
        ]
    );
    assert!(!judgement.has_errors(), "a note unless asked otherwise");
    policy.fail_on_unused_allowance = true;
    assert!(judge([&model], &policy).has_errors());
}

/// A test's server: the root the test spawned, two connection handlers and a purge task
/// under it, a grandchild under a handler; and a task whose parent completed.
fn leaked_server() -> Model {
    let mut update = start(7, "/target/debug/deps/server_tests-0123456789abcdef");
    update.runtime = Some(threads(&[
        (1, "tests::serves"),
        (2, "tokio-runtime-worker"),
    ]));
    leak(&mut update, 1, "tests/serves.rs:10:5", 0);
    leak(&mut update, 2, "src/server.rs:259:13", 1);
    leak(&mut update, 3, "src/server.rs:259:13", 1);
    leak(&mut update, 4, "src/db.rs:135:9", 1);
    leak(&mut update, 5, "src/db.rs:140:9", 2);
    completed(&mut update, 6, "src/pool.rs:1:1");
    leak(&mut update, 7, "src/pool.rs:9:9", 6);
    exited(vec![update])
}

/// A task spawned by `parent` (0: by the test's body) that was pending at shutdown.
fn leak(update: &mut v1::Update, id: u64, location: &str, parent: u64) {
    let mut task = spawned(id, location);
    task.parent_id = parent;
    task.spawn_thread = if parent == 0 { 1 } else { 2 };
    update.spawned.push(task);
    update.ended.push(ended(
        id,
        WireOutcome::CancelledAtShutdown,
        Some(stats(id, TaskState::Idle, 1, 1)),
    ));
}

#[test]
fn leaks_from_one_helper_in_several_tests_are_one_finding_naming_the_tests() {
    let mut update = start(7, "/target/debug/deps/server_tests-0123456789abcdef");
    update.runtime = Some(threads(&[
        (1, "tests::a"),
        (2, "tokio-runtime-worker"),
        (3, "tests::b"),
        (4, "tests::c"),
        (5, "tests::d"),
    ]));
    for (id, thread) in [(1, 1), (2, 3), (3, 4), (4, 5), (5, 5)] {
        leak(&mut update, id, "tests/common/mod.rs:20:5", 0);
        update.spawned.last_mut().unwrap().spawn_thread = thread;
    }
    let judgement = judge([&one(update.clone())], &Policy::default());
    let [finding] = judgement.findings.as_slice() else {
        panic!("{judgement:?}")
    };
    let expected = "5 times from this spawn site in 4 tests (tests::a, tests::b, tests::c \
                    and 1 more); worst: ";
    assert!(finding.message.starts_with(expected), "{}", finding.message);

    update.spawned.truncate(2);
    update.ended.truncate(2);
    let judgement = judge([&one(update)], &Policy::default());
    let expected = "2 times from this spawn site in 2 tests (tests::a and tests::b); worst: ";
    assert!(
        judgement.findings[0].message.starts_with(expected),
        "{}",
        judgement.findings[0].message
    );
}

#[test]
fn a_leak_is_reported_at_its_root_with_its_leaked_descendants_folded_in() {
    let judgement = judge([&leaked_server()], &Policy::default());
    let locations: Vec<&str> = judgement
        .findings
        .iter()
        .map(|f| f.spawn_location.as_str())
        .collect();
    // The task whose parent completed is a root of its own.
    assert_eq!(locations, ["tests/serves.rs:10:5", "src/pool.rs:9:9"]);
    let server = &judgement.findings[0];
    assert_eq!((server.count, server.task_id), (1, 1));
    assert_eq!(server.test.as_deref(), Some("tests::serves"));
    let Detail::AliveAtShutdown { descendants } = &server.detail else {
        panic!("{server:?}")
    };
    let sites: Vec<(&str, u64)> = descendants
        .iter()
        .map(|d| (d.spawn_location.as_str(), d.count))
        .collect();
    assert_eq!(
        sites,
        [
            ("src/server.rs:259:13", 2),
            ("src/db.rs:135:9", 1),
            ("src/db.rs:140:9", 1)
        ]
    );
    assert!(
        server.message.contains(
            "and 4 tasks it spawned, still alive: src/server.rs:259:13 ×2, src/db.rs:135:9 ×1"
        ),
        "{}",
        server.message
    );
}

#[test]
fn an_allowed_root_takes_its_tree_along_and_allowed_descendants_leave_the_fold() {
    let mut policy = Policy::default();
    allow(&mut policy, "alive_at_shutdown@src/db.rs:*#serves");
    let judgement = judge([&leaked_server()], &policy);
    let Detail::AliveAtShutdown { descendants } = &judgement.findings[0].detail else {
        panic!()
    };
    assert_eq!(descendants.len(), 1, "{descendants:?}");
    assert!(judgement.unused_allowances.is_empty());

    let mut policy = Policy::default();
    allow(&mut policy, "alive_at_shutdown@tests/serves.rs:*");
    let judgement = judge([&leaked_server()], &policy);
    let locations: Vec<&str> = judgement
        .findings
        .iter()
        .map(|f| f.spawn_location.as_str())
        .collect();
    assert_eq!(locations, ["src/pool.rs:9:9"]);
}

#[test]
fn parents_in_a_cycle_still_give_every_leak_a_finding() {
    let mut update = start(7, "app");
    for (id, parent) in [(1, 3), (2, 1), (3, 2), (4, 3)] {
        leak(&mut update, id, "src/main.rs:10:5", parent);
    }
    let judgement = judge([&one(update)], &Policy::default());
    let [finding] = judgement.findings.as_slice() else {
        panic!("{judgement:?}")
    };
    let Detail::AliveAtShutdown { descendants } = &finding.detail else {
        panic!()
    };
    assert_eq!(finding.count + descendants[0].count, 4, "{finding:?}");
}

#[test]
fn findings_are_sorted_by_severity_then_size() {
    let mut update = start(7, "app");
    update.spawned.push(spawned(1, "src/a.rs:1:1"));
    update.ended.push(ended(1, WireOutcome::Panicked, None));
    for id in 2..=4 {
        completed(&mut update, id, "src/b.rs:1:1");
        update
            .stalls
            .push(stall(id, id, StallPhase::Ended, 200 * MS));
    }
    completed(&mut update, 5, "src/c.rs:1:1");
    update.stalls.push(stall(5, 5, StallPhase::Ended, 900 * MS));
    let judgement = judge([&one(update)], &Policy::default());
    let order: Vec<_> = judgement
        .findings
        .iter()
        .map(|f| (f.spawn_location.as_str(), f.count))
        .collect();
    assert_eq!(
        order,
        [
            ("src/b.rs:1:1", 3),
            ("src/c.rs:1:1", 1),
            ("src/a.rs:1:1", 1)
        ]
    );
}

#[test]
fn findings_from_several_processes_group_by_site() {
    let a = one(cancelled_at_shutdown(1, TaskState::Idle, 1, 1));
    let mut other = cancelled_at_shutdown(1, TaskState::Idle, 1, 1);
    other.process.as_mut().unwrap().pid = 8;
    let b = one(other);
    let judgement = judge([&a, &b], &Policy::default());
    assert_eq!(judgement.processes.len(), 2);
    assert_eq!(judgement.findings.len(), 1);
    assert_eq!(judgement.findings[0].count, 2);
}

#[test]
fn growth_is_only_judged_over_a_watch_window() {
    let mut model = Model::new();
    model.apply(&start(7, "server"));
    for step in 1..=40u64 {
        let mut update = at(step * 100 * MS);
        update.spawned.push(spawned(step, "src/conn.rs:30:9"));
        model.apply(&update);
    }
    assert!(judge([&model], &Policy::default()).findings.is_empty());
    let mut policy = Policy::default();
    policy.growth = true;
    let judgement = judge([&model], &policy);
    let [finding] = judgement.findings.as_slice() else {
        panic!("{judgement:?}")
    };
    assert_eq!(finding.kind, FindingKind::Growth);
    assert_eq!(finding.severity, Severity::Warning);
    assert_eq!(finding.spawn_location, "src/conn.rs:30:9");
    assert_eq!(finding.task_id, 40, "the newest live task is the example");
}

#[test]
fn an_uninstrumented_process_is_noted() {
    let mut update = start(7, "app");
    update.process.as_mut().unwrap().instrumentation = v1::Instrumentation::Missing as i32;
    let judgement = judge([&one(update)], &Policy::default());
    assert!(judgement.notes.iter().any(|n| n.contains("tokio_unstable")));
}

#[test]
fn a_process_whose_subscriber_hides_tokio_spans_is_noted_with_the_fix() {
    let mut update = start(7, "app");
    update.process.as_mut().unwrap().instrumentation = v1::Instrumentation::Filtered as i32;
    let judgement = judge([&one(update)], &Policy::default());
    assert!(
        judgement
            .notes
            .iter()
            .any(|n| n.contains(".with_filter(EnvFilter::from_default_env())")),
        "{:?}",
        judgement.notes
    );
}

/// A process built without `--cfg tokio_unstable`, under the macros.
fn workers_only(pid: u32, program: &str) -> v1::Update {
    let mut update = start(pid, program);
    let process = update.process.as_mut().unwrap();
    process.instrumentation = v1::Instrumentation::Missing as i32;
    process.capability = v1::Capability::Workers as i32;
    update
}

#[test]
fn tasks_counted_alive_at_a_tests_shutdown_are_a_leak_of_that_many_in_that_test() {
    let mut update = workers_only(7, "suite");
    update.alive_at_shutdown.push(v1::AliveAtShutdown {
        at_ns: 5 * MS,
        alive_tasks: 2,
        thread_name: "leaves_two_tickers_running".into(),
        is_test: true,
    });
    let judgement = judge([&one(update)], &Policy::default());
    let [finding] = judgement.findings.as_slice() else {
        panic!("{judgement:?}")
    };
    assert_eq!(finding.kind, FindingKind::AliveAtShutdown);
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(finding.count, 2);
    assert_eq!(finding.spawn_location, crate::model::UNKNOWN_LOCATION);
    assert!(
        finding
            .message
            .contains("test `leaves_two_tickers_running`")
            && finding.message.contains("--cfg tokio_unstable"),
        "{}",
        finding.message
    );
    assert!(
        judgement.notes.iter().any(|n| n.contains(WORKERS_ONLY)),
        "{:?}",
        judgement.notes
    );
}

#[test]
fn a_hundred_thousand_leaked_tasks_make_one_finding() {
    // Not a timing test, but one that would not finish if judging were quadratic.
    let mut update = start(7, "server");
    for id in 1..=100_000 {
        update.spawned.push(spawned(id, "src/conn.rs:30:9"));
        update.ended.push(ended(
            id,
            WireOutcome::CancelledAtShutdown,
            Some(stats(id, TaskState::Idle, 1, 1)),
        ));
    }
    let judgement = judge([&one(update)], &Policy::default());
    let [finding] = judgement.findings.as_slice() else {
        panic!()
    };
    assert_eq!(
        (finding.kind, finding.count),
        (FindingKind::AliveAtShutdown, 100_000)
    );
    assert_eq!(finding.task_id, 1, "the first task is the example");
}

#[test]
fn a_chain_of_fifty_thousand_leaked_tasks_folds_into_its_first() {
    // Not a timing test either: each task is walked once, however deep the chain.
    let mut update = start(7, "server");
    for id in 1..=50_000 {
        leak(&mut update, id, "src/relay.rs:12:9", id - 1);
    }
    let judgement = judge([&one(update)], &Policy::default());
    let [finding] = judgement.findings.as_slice() else {
        panic!()
    };
    assert_eq!((finding.count, finding.task_id), (1, 1));
    let Detail::AliveAtShutdown { descendants } = &finding.detail else {
        panic!()
    };
    assert_eq!(descendants[0].count, 49_999);
}

#[test]
fn a_stall_shows_the_frames_the_probe_marked_and_what_the_thread_was_doing() {
    let mut update = start(7, "app");
    completed(&mut update, 1, "src/main.rs:10:5");
    let mut s = stall(1, 1, StallPhase::Ended, 612 * MS);
    s.activity = v1::Activity::Blocked as i32;
    let marked = |function: &str, location: &str| v1::Frame {
        user: true,
        ..frame(function, location)
    };
    s.samples.push(v1::StackSample {
        frames: vec![
            frame("libc::nanosleep", ""),
            marked(
                "std::thread::sleep",
                "/rustc/abc/library/std/src/thread/mod.rs:1:1",
            ),
            marked("app::load_config", "src/config.rs:8:5"),
            frame("tokio::runtime::task::core::Core::poll", ""),
            // libtest's runner, outside the test: the toolchain's, never shown.
            marked(
                "test::run_test_in_process",
                "/rustc/abc/library/test/src/lib.rs:686:27",
            ),
        ],
        ..Default::default()
    });
    update.stalls.push(s);
    let judgement = judge([&one(update)], &Policy::default());
    let finding = &judgement.findings[0];
    let Detail::Stall { backtrace, .. } = &finding.detail else {
        panic!()
    };
    let shown: Vec<&str> = backtrace.iter().map(|f| &*f.function).collect();
    assert_eq!(shown, ["std::thread::sleep", "app::load_config"]);
    assert!(
        finding.message.ends_with("blocked in `std::thread::sleep`"),
        "{}",
        finding.message
    );
    assert_eq!(finding.source_location(), "src/config.rs:8:5");
}

#[test]
fn a_busy_stall_says_it_was_computing() {
    let mut update = start(7, "app");
    completed(&mut update, 1, "src/main.rs:10:5");
    let mut s = stall(1, 1, StallPhase::Ended, 500 * MS);
    s.activity = v1::Activity::Busy as i32;
    update.stalls.push(s);
    let judgement = judge([&one(update)], &Policy::default());
    assert!(
        judgement.findings[0].message.contains("busy computing"),
        "{}",
        judgement.findings[0].message
    );
}

/// A dump at shutdown placed task 1 at `src/serve.rs:88:14`, awaiting a channel.
fn with_chain(update: &mut v1::Update, task: u64) {
    update.dumps.push(v1::Dump {
        trigger: v1::DumpTrigger::Shutdown as i32,
        frames: vec![
            v1::Frame {
                function: "tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}".into(),
                location:
                    "/home/u/.cargo/registry/src/x/tokio-1.54.1/src/sync/mpsc/bounded.rs:245:42"
                        .into(),
                address: 0,
                user: true,
            },
            v1::Frame {
                function: "app::serve::{{closure}}".into(),
                location: "src/serve.rs:88:14".into(),
                address: 0,
                user: true,
            },
        ],
        leaves: vec![v1::AwaitLeaf {
            frames: vec![0, 1],
            await_frame: 2,
        }],
        chains: vec![v1::AwaitChain {
            task_id: task,
            leaves: vec![0],
        }],
        ..Default::default()
    });
}

#[test]
fn a_leak_a_dump_reached_says_where_it_waits_and_annotates_that_line() {
    let mut update = cancelled_at_shutdown(1, TaskState::Idle, 1, 1);
    with_chain(&mut update, 1);
    let judgement = judge([&one(update)], &Policy::default());
    let [finding] = judgement.findings.as_slice() else {
        panic!("{judgement:?}")
    };
    assert_eq!(finding.waiting_at.len(), 2);
    assert_eq!(finding.source_location(), "src/serve.rs:88:14");
    assert_eq!(
        finding.waiting_point().unwrap().to_string(),
        "waiting at src/serve.rs:88:14 in `app::serve` (on \
         `tokio::sync::mpsc::bounded::Receiver::recv`)"
    );
    assert!(!judgement.notes.iter().any(|n| n.contains("await chain")));
}

#[test]
fn a_leak_no_dump_reached_keeps_its_spawn_line_and_a_note_says_why() {
    let mut update = cancelled_at_shutdown(1, TaskState::Idle, 1, 1);
    update.process.as_mut().unwrap().route = v1::Route::Tracing as i32;
    let judgement = judge([&one(update)], &Policy::default());
    assert_eq!(judgement.findings[0].source_location(), "src/main.rs:10:5");
    assert!(
        judgement
            .notes
            .iter()
            .any(|n| n.contains("no await chain") && n.contains("these never did long enough")),
        "{:?}",
        judgement.notes
    );
}

/// A dump that reached task 1 and found it parked on no leaf future (`accept`, a future
/// outside tokio): its chain is empty.
fn with_empty_chain(update: &mut v1::Update, task: u64) {
    update.dumps.push(v1::Dump {
        trigger: v1::DumpTrigger::Idle as i32,
        chains: vec![v1::AwaitChain {
            task_id: task,
            leaves: vec![],
        }],
        ..Default::default()
    });
}

#[test]
fn a_leak_the_dump_reached_without_a_leaf_is_told_from_one_it_did_not_reach() {
    let mut reached = cancelled_at_shutdown(1, TaskState::Idle, 1, 1);
    reached.process.as_mut().unwrap().route = v1::Route::Tracing as i32;
    with_empty_chain(&mut reached, 1);
    let judgement = judge([&one(reached)], &Policy::default());
    assert!(judgement.findings[0].waiting_at.is_empty());
    let [note] = judgement
        .notes
        .iter()
        .filter(|n| n.contains("no await chain"))
        .collect::<Vec<_>>()[..]
    else {
        panic!("one note on chains: {:?}", judgement.notes)
    };
    assert!(
        note.contains("1 leaked task(s)")
            && note.contains("the dump reached them")
            && note.contains("TcpListener::accept")
            && !note.contains("no dump reached"),
        "{note}"
    );

    let mut unreached = cancelled_at_shutdown(1, TaskState::Idle, 1, 1);
    unreached.process.as_mut().unwrap().route = v1::Route::Tracing as i32;
    with_empty_chain(&mut unreached, 99);
    let judgement = judge([&one(unreached)], &Policy::default());
    let [note] = judgement
        .notes
        .iter()
        .filter(|n| n.contains("no await chain"))
        .collect::<Vec<_>>()[..]
    else {
        panic!("one note on chains: {:?}", judgement.notes)
    };
    assert!(
        note.contains("no dump reached them") && !note.contains("the dump reached them"),
        "{note}"
    );
}

#[test]
fn tasks_the_probe_counted_by_site_count_as_completed_and_each_tally_is_replaced_not_added() {
    let folded = |tasks: u64| v1::FoldedTasks {
        location: Some(v1::Location {
            file: "src/pool.rs".into(),
            line: 40,
            column: 9,
        }),
        kind: v1::TaskKind::Task as i32,
        tasks,
        polls: tasks,
        busy_ns: tasks * 1_000,
        max_poll_ns: 2_000,
        ids: Vec::new(),
    };
    let mut first = start(7, "app");
    completed(&mut first, 1, "src/pool.rs:40:9");
    first.folded.push(folded(900));
    // The next update carries the site's whole tally again, grown: it replaces.
    let mut second = at(20 * MS);
    second.folded.push(folded(2_400));
    let model = exited(vec![first, second]);
    assert_eq!(model.folded_tasks(), 2_400);
    let judgement = judge([&model], &Policy::default());
    assert_eq!(judgement.summary.tasks, 2_401);
    assert_eq!(judgement.summary.completed, 2_401);
    assert!(judgement.findings.is_empty(), "{judgement:?}");
}
