//! Builders of synthetic updates for tests of the model, the judge and the reports.

use taskscope_api::v1;

pub(crate) const MS: u64 = 1_000_000;

pub(crate) fn process(pid: u32, program: &str) -> v1::ProcessInfo {
    v1::ProcessInfo {
        pid,
        program: program.into(),
        instrumentation: v1::Instrumentation::Seen as i32,
        stall_threshold_ns: 100 * MS,
        publish_interval_ns: 100 * MS,
        waker_tracking: true,
        ..Default::default()
    }
}

/// The first update of a stream: process info, threads 1 (`main`) and 2 (a worker), and a
/// one-update snapshot.
pub(crate) fn start(pid: u32, program: &str) -> v1::Update {
    v1::Update {
        now_ns: 0,
        process: Some(process(pid, program)),
        snapshot: v1::SnapshotMark::SnapshotOnly as i32,
        runtime: Some(threads(&[(1, "main"), (2, "tokio-runtime-worker")])),
        ..Default::default()
    }
}

pub(crate) fn threads(names: &[(u32, &str)]) -> v1::RuntimeState {
    v1::RuntimeState {
        threads: names
            .iter()
            .map(|&(thread, name)| v1::ThreadState {
                thread,
                name: name.into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub(crate) fn at(now_ns: u64) -> v1::Update {
    v1::Update {
        now_ns,
        ..Default::default()
    }
}

pub(crate) fn spawned(id: u64, location: &str) -> v1::TaskSpawned {
    let mut parts = location.rsplitn(3, ':');
    let column = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let line = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
    let file = parts.next().unwrap_or_default().to_owned();
    v1::TaskSpawned {
        id,
        kind: v1::TaskKind::Task as i32,
        location: Some(v1::Location { file, line, column }),
        spawn_thread: 2,
        runtime_id: 1,
        ..Default::default()
    }
}

pub(crate) fn stats(id: u64, state: v1::TaskState, polls: u64, wakers: i64) -> v1::TaskStats {
    v1::TaskStats {
        id,
        state: state as i32,
        polls,
        wakers,
        ..Default::default()
    }
}

pub(crate) fn ended(id: u64, outcome: v1::Outcome, stats: Option<v1::TaskStats>) -> v1::TaskEnded {
    v1::TaskEnded {
        id,
        outcome: outcome as i32,
        stats,
        ..Default::default()
    }
}

pub(crate) fn stall(
    stall_id: u64,
    task_id: u64,
    phase: v1::StallPhase,
    duration_ns: u64,
) -> v1::Stall {
    v1::Stall {
        stall_id,
        phase: phase as i32,
        task_id,
        thread: 2,
        duration_ns,
        ..Default::default()
    }
}

pub(crate) fn frame(function: &str, location: &str) -> v1::Frame {
    v1::Frame {
        function: function.into(),
        location: location.into(),
        address: 0,
        ..Default::default()
    }
}
