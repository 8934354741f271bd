use taskscope_api::v1::{self, Outcome as WireOutcome, SnapshotMark, StallPhase, TaskState};

use super::fixture::*;
use super::stall::Phase;
use super::task::{Kind, Outcome, State};
use super::*;

fn model(updates: &[v1::Update]) -> Model {
    let mut model = Model::new();
    for update in updates {
        model.apply(update);
    }
    model
}

#[test]
fn a_short_task_can_be_spawned_described_and_ended_in_one_update() {
    let mut update = start(7, "app");
    update.spawned.push(spawned(1, "src/main.rs:10:5"));
    update.stats.push(stats(1, TaskState::Idle, 3, 1));
    update.ended.push(ended(1, WireOutcome::Completed, None));
    let model = model(&[update]);
    let task = model.task(1).unwrap();
    assert_eq!(model.location(task.location), "src/main.rs:10:5");
    assert_eq!(task.stats.polls, 3);
    assert_eq!(task.outcome(), Some(&Outcome::Completed));
    assert_eq!(model.pid(), 7);
    assert_eq!(model.instrumentation(), Instrumentation::Seen);
}

#[test]
fn a_first_snapshot_mark_replaces_everything_known() {
    let mut first = start(7, "app");
    first.spawned.push(spawned(1, "src/main.rs:10:5"));
    let mut again = start(8, "app");
    again.snapshot = SnapshotMark::SnapshotFirst as i32;
    again.spawned.push(spawned(2, "src/main.rs:11:5"));
    let mut last = at(5);
    last.snapshot = SnapshotMark::SnapshotLast as i32;
    let model = model(&[first, again, last]);
    assert!(model.task(1).is_none());
    assert!(model.task(2).is_some());
    assert_eq!(model.pid(), 8);
}

#[test]
fn a_task_announced_late_keeps_its_numbers_and_gains_its_identity() {
    let mut early = start(7, "app");
    early.stats.push(stats(5, TaskState::Idle, 2, 1));
    let mut late = at(10);
    late.spawned.push(spawned(5, "src/lib.rs:3:9"));
    let model = model(&[early, late]);
    let task = model.task(5).unwrap();
    assert_eq!(task.kind, Kind::Task);
    assert_eq!(task.stats.polls, 2);
    assert_eq!(model.location(task.location), "src/lib.rs:3:9");
}

#[test]
fn an_end_of_a_never_announced_task_keeps_it_visible() {
    let mut update = start(7, "app");
    update.ended.push(ended(9, WireOutcome::Cancelled, None));
    let model = model(&[update]);
    let task = model.task(9).expect("a placeholder, not a ghost");
    assert_eq!(model.location(task.location), UNKNOWN_LOCATION);
    assert_eq!(task.outcome(), Some(&Outcome::Cancelled));
}

#[test]
fn a_stall_moves_from_started_to_ended_and_keeps_its_stack() {
    let mut begin = start(7, "app");
    begin.spawned.push(spawned(1, "src/main.rs:10:5"));
    let mut started = stall(1, 1, StallPhase::Started, 120 * MS);
    started.samples.push(v1::StackSample {
        at_ns: 110 * MS,
        frames: vec![
            frame("std::thread::sleep", ""),
            frame("app::work", "src/main.rs:20:9"),
        ],
        ..Default::default()
    });
    begin.stalls.push(started);
    let mut ongoing = at(300 * MS);
    ongoing
        .stalls
        .push(stall(1, 1, StallPhase::Ongoing, 300 * MS));
    let mut model = model(&[begin, ongoing]);
    let live = model.stalls().next().unwrap().clone();
    assert_eq!(live.phase, Phase::Ongoing);
    assert_eq!(
        live.duration_at(500 * MS),
        500 * MS,
        "a live stall keeps growing"
    );
    let mut done = at(650 * MS);
    done.stalls.push(stall(1, 1, StallPhase::Ended, 612 * MS));
    model.apply(&done);
    let ended = model.stalls().next().unwrap();
    assert_eq!(ended.phase, Phase::Ended);
    assert_eq!(ended.duration_at(10_000 * MS), 612 * MS);
    assert_eq!(ended.stack.len(), 2);
    assert_eq!(&*ended.stack[1].function, "app::work");
}

/// A stall as long as the sampling schedule's last step gets its last sample right at its
/// end, where the thread already runs the code after it: the stack shown stays the first
/// one, taken while the poll was seen running.
#[test]
fn a_stalls_stack_is_its_first_sample_not_one_taken_as_it_ended() {
    let mut begin = start(7, "app");
    begin.spawned.push(spawned(1, "src/main.rs:10:5"));
    let sample = |at_ns, function: &str| v1::StackSample {
        at_ns,
        frames: vec![frame(function, "src/main.rs:20:9")],
        ..Default::default()
    };
    let mut started = stall(1, 1, StallPhase::Started, 120 * MS);
    started
        .samples
        .push(sample(100 * MS, "app::load_certificate"));
    begin.stalls.push(started);
    let mut done = at(650 * MS);
    let mut ended = stall(1, 1, StallPhase::Ended, 402 * MS);
    ended
        .samples
        .push(sample(200 * MS, "app::load_certificate"));
    ended.samples.push(sample(401 * MS, "app::accept_loop"));
    done.stalls.push(ended);
    let model = model(&[begin, done]);
    let stall = model.stalls().next().unwrap();
    assert_eq!(&*stall.stack[0].function, "app::load_certificate");
}

#[test]
fn a_stream_without_an_exit_word_is_cut() {
    let mut exited = model(&[start(7, "app")]);
    let mut last = at(5);
    last.process_exited = true;
    exited.apply(&last);
    exited.finish();
    assert_eq!(exited.ending(), Ending::Exited);

    let mut cut = model(&[start(7, "app")]);
    assert_eq!(cut.ending(), Ending::Open);
    cut.finish();
    assert_eq!(cut.ending(), Ending::Cut);
}

#[test]
fn live_counts_per_site_follow_spawns_and_ends_but_not_block_on() {
    let mut update = start(7, "app");
    for id in 1..=3 {
        update.spawned.push(spawned(id, "src/main.rs:10:5"));
    }
    let mut main = spawned(4, "src/main.rs:1:1");
    main.kind = v1::TaskKind::BlockOn as i32;
    update.spawned.push(main);
    let mut later = at(10);
    later.ended.push(ended(2, WireOutcome::Completed, None));
    let model = model(&[update, later]);
    let site = model.task(1).unwrap().location;
    assert_eq!(model.growth().live(site), 2);
    assert_eq!(model.growth().live(model.task(4).unwrap().location), 0);
}

#[test]
fn instrumentation_news_is_taken_from_either_place() {
    let mut first = start(7, "app");
    first.process.as_mut().unwrap().instrumentation = v1::Instrumentation::Waiting as i32;
    let mut later = at(10);
    later.instrumentation = v1::Instrumentation::Missing as i32;
    let mut model = model(&[first]);
    assert_eq!(model.instrumentation(), Instrumentation::Waiting);
    model.apply(&later);
    assert_eq!(model.instrumentation(), Instrumentation::Missing);
}

#[test]
fn thread_numbers_name_threads_and_absurd_ones_are_ignored() {
    let mut update = start(7, "app");
    update
        .runtime
        .as_mut()
        .unwrap()
        .threads
        .push(v1::ThreadState {
            thread: u32::MAX,
            name: "evil".into(),
            ..Default::default()
        });
    let model = model(&[update]);
    assert_eq!(model.runtime().thread_name(1), "main");
    assert_eq!(model.runtime().thread_name(99), "thread #99");
    assert_eq!(model.runtime().threads().count(), 2);
}

#[test]
fn a_hundred_thousand_tasks_fit_in_a_compact_table() {
    // Not a timing test: it shows the per-task footprint stays small and the fold copes.
    assert!(
        std::mem::size_of::<task::Task>() <= 192,
        "{}",
        std::mem::size_of::<task::Task>()
    );
    let mut update = start(7, "app");
    for id in 1..=100_000 {
        update.spawned.push(spawned(id, "src/main.rs:10:5"));
        update.stats.push(stats(id, TaskState::Idle, 1, 1));
    }
    let model = model(&[update]);
    assert_eq!(model.task_count(), 100_000);
    assert_eq!(model.task(99_999).unwrap().stats.state, State::Idle);
}

#[test]
fn a_stall_is_the_apps_only_when_its_own_time_without_waiting_or_the_probe_passes_the_threshold() {
    use crate::model::stall::HeldBy;
    let stall = |duration_ms: u64, measured_ms: u64, waiting_ms: u64, probe_ms: u64| {
        let mut wire = taskscope_api::v1::Stall {
            phase: taskscope_api::v1::StallPhase::Ended as i32,
            duration_ns: duration_ms * 1_000_000,
            measured_ns: measured_ms * 1_000_000,
            waiting_for_cpu_ns: waiting_ms * 1_000_000,
            probe_ns: probe_ms * 1_000_000,
            ..Default::default()
        };
        wire.stall_id = 1;
        crate::model::stall::Stall::from_wire(&wire)
    };
    let threshold = 100_000_000;
    // 180 ms, 150 of them waiting for a CPU: 30 ms of its own.
    assert_eq!(stall(180, 178, 150, 0).held_by(threshold), HeldBy::Machine);
    // A 2 s CPU loop on a busy machine still ran 500 ms of its own.
    assert_eq!(
        stall(2_000, 1_990, 1_500, 0).held_by(threshold),
        HeldBy::App
    );
    // Blocked in a sleep: no waiting for a CPU.
    assert_eq!(stall(600, 590, 0, 0).held_by(threshold), HeldBy::App);
    // Nothing measured: all of it the app's.
    assert_eq!(stall(300, 0, 0, 0).held_by(threshold), HeldBy::App);
    // The waiting measured is what the thread waited, never scaled up from a part of the
    // poll to the whole: 38.6 ms waited in a 190.8 ms poll leaves 152.2 ms of its own.
    let partly = stall(191, 79, 39, 0);
    assert_eq!(partly.app_ns(), 152_000_000);
    assert_eq!(partly.held_by(threshold), HeldBy::App);
    // 25,000 spawns in a debug build: 160 ms, 120 of them in the probe's spawn hooks.
    assert_eq!(stall(160, 150, 0, 120).held_by(threshold), HeldBy::Probe);
    // The probe's time and the machine's together: 300 ms, half waiting, 60 the probe's,
    // whose share of the wait is not counted twice: (300 - 60) * (300 - 150) / 300.
    let both = stall(300, 300, 150, 60);
    assert_eq!(both.app_ns(), 120_000_000);
    assert_eq!(both.held_by(threshold), HeldBy::App);
    assert_eq!(stall(300, 300, 200, 60).held_by(threshold), HeldBy::Machine);
    // A poll of the app's own past the threshold, with some of the probe's time in it.
    assert_eq!(stall(400, 390, 0, 100).held_by(threshold), HeldBy::App);
    // 25,000 spawns in a debug build on a loaded machine: 956 ms, 739 of them waiting for
    // a CPU, 492 in the probe's hooks. Shared in proportion, the wait leaves the app 105
    // ms and the probe 111 ms of running, half of which may be the probe's slowing of the
    // app's code: not the app's stall.
    let mut loaded = stall(956, 956, 739, 492);
    assert_eq!(loaded.app_ns() / 1_000_000, 105);
    assert_eq!(loaded.probe_cpu_ns() / 1_000_000, 111);
    assert_eq!(loaded.held_by(threshold), HeldBy::Probe);
    // The probe timed 470 ms of its stretches in CPU time too, and ran only 170 ms of
    // them: most of the wait fell in them, and the app ran about 45 ms.
    loaded.probe_exact = (470_000_000, 170_000_000);
    assert_eq!(loaded.app_ns() / 1_000_000, 44);
    assert_eq!(loaded.probe_cpu_ns() / 1_000_000, 172);
    assert_eq!(loaded.held_by(threshold), HeldBy::Machine);
    // The app's code ran 130 ms beside 170 ms of the probe's: within the slowdown the
    // probe may have caused it.
    let mut slowed = stall(700, 700, 400, 400);
    slowed.probe_exact = (400_000_000, 170_000_000);
    assert_eq!(slowed.app_ns(), 130_000_000);
    assert_eq!(slowed.held_by(threshold), HeldBy::Probe);
    // A real stall in such a poll: 250 ms of the app's own beside the probe's 170.
    let mut stalled = stall(820, 820, 400, 400);
    stalled.probe_exact = (400_000_000, 170_000_000);
    assert_eq!(stalled.app_ns(), 250_000_000);
    assert_eq!(stalled.held_by(threshold), HeldBy::App);
    // Every stretch timed exactly: the app ran the poll's CPU time less the probe's.
    let mut exact = stall(300, 300, 100, 150);
    exact.probe_exact = (150_000_000, 90_000_000);
    assert_eq!(exact.app_ns(), 110_000_000);
    assert_eq!(exact.probe_cpu_ns(), 90_000_000);
    assert_eq!(exact.held_by(threshold), HeldBy::Probe);
    let mut exact = stall(350, 350, 100, 150);
    exact.probe_exact = (150_000_000, 90_000_000);
    assert_eq!(exact.held_by(threshold), HeldBy::App);
}

fn shown_frame(function: &str, location: &str) -> super::stall::Frame {
    super::stall::Frame {
        function: function.into(),
        location: Some(location.into()),
        user: true,
    }
}

#[test]
fn a_thread_blocked_in_a_library_call_is_at_the_app_line_that_made_it() {
    let shown = [
        shown_frame(
            "std::thread::sleep",
            "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/thread/mod.rs:1:1",
        ),
        shown_frame("app::load", "/src/app/src/main.rs:11:9"),
        shown_frame("app::main::{{closure}}", "/src/app/src/main.rs:26:9"),
    ];
    assert_eq!(
        super::stall::blocking_line(&shown),
        Some("/src/app/src/main.rs:11:9")
    );
}

#[test]
fn a_thread_computing_in_the_app_s_own_code_is_at_that_line_not_its_caller() {
    let shown = [
        shown_frame("app::spin", "/src/app/src/main.rs:11:36"),
        shown_frame("app::main::{{closure}}", "/src/app/src/main.rs:26:9"),
    ];
    assert_eq!(
        super::stall::blocking_line(&shown),
        Some("/src/app/src/main.rs:11:36")
    );
}

fn folded_at(file: &str, tasks: u64, max_poll_ns: u64) -> v1::FoldedTasks {
    v1::FoldedTasks {
        location: Some(v1::Location {
            file: file.into(),
            line: 40,
            column: 9,
        }),
        kind: v1::TaskKind::Task as i32,
        tasks,
        polls: 3 * tasks,
        busy_ns: 2_000 * tasks,
        max_poll_ns,
        ids: Vec::new(),
    }
}

#[test]
fn each_sites_whole_tally_is_kept_and_a_later_one_replaces_it() {
    let mut snapshot = start(7, "app");
    snapshot.folded.push(folded_at("src/pool.rs", 900, 40_000));
    snapshot.folded.push(folded_at("src/feed.rs", 70, 9_000));
    // A delta that overlaps the snapshot: the pool's tally again, grown, in two messages
    // (as a site with many ids comes); the feed's tally not repeated.
    let mut delta = at(20 * MS);
    delta.folded.push(folded_at("src/pool.rs", 2_400, 55_000));
    delta.folded.push(folded_at("src/pool.rs", 2_400, 55_000));
    let model = model(&[snapshot, delta]);
    let mut sites: Vec<(&str, folded::Folded)> = model
        .folded()
        .map(|(site, tally)| (model.location(site), *tally))
        .collect();
    sites.sort_by_key(|&(location, _)| location);
    let tally = |tasks, max_poll_ns| folded::Folded {
        kind: Kind::Task,
        tasks,
        polls: 3 * tasks,
        busy_ns: 2_000 * tasks,
        max_poll_ns,
    };
    assert_eq!(
        sites,
        [
            ("src/feed.rs:40:9", tally(70, 9_000)),
            ("src/pool.rs:40:9", tally(2_400, 55_000)),
        ]
    );
    assert_eq!(model.folded_tasks(), 2_470);
}

#[test]
fn a_site_keeps_its_location_id_through_a_new_snapshot() {
    let mut first = start(7, "app");
    first.spawned.push(spawned(1, "src/main.rs:10:5"));
    first.folded.push(folded_at("src/pool.rs", 900, 40_000));
    let mut again = start(7, "app");
    again.snapshot = SnapshotMark::SnapshotFirst as i32;
    again.spawned.push(spawned(2, "src/other.rs:1:1"));
    again.folded.push(folded_at("src/pool.rs", 1_000, 40_000));
    let before = model(std::slice::from_ref(&first));
    let (site, _) = before.folded().next().unwrap();
    let after = model(&[first, again]);
    assert_eq!(after.location(site), "src/pool.rs:40:9");
    assert_eq!(after.folded_at(site).map(|f| f.tasks), Some(1_000));
}
