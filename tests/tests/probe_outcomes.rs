//! End-to-end: real example programs, recorded by the real probe, read back.

use taskscope_api::v1::{Outcome, TaskState};
use taskscope_e2e::{fault_location, run_recorded};

#[test]
fn a_panicking_task_ends_panicked_with_its_message() {
    let (output, folded) = run_recorded("panicking", &[]);
    assert!(output.status.success());
    let task = folded.task_at(&fault_location("src/bin/panicking.rs", "panic"));
    assert_eq!(task.outcome(), Some(Outcome::Panicked));
    let ended = task.ended.as_ref().unwrap();
    assert_eq!(ended.panic_message, "boom: the config file is missing");
    assert!(ended.panic_location.contains("panicking.rs"), "{ended:?}");
}

#[test]
fn an_aborted_idle_task_is_cancelled_not_cancelled_at_shutdown() {
    let (output, folded) = run_recorded("aborted", &[]);
    assert!(output.status.success());
    let spawned: Vec<_> = folded.spawned_tasks().collect();
    assert_eq!(spawned.len(), 1, "{spawned:#?}");
    assert_eq!(spawned[0].outcome(), Some(Outcome::Cancelled));
}

#[test]
fn a_task_still_running_at_shutdown_is_cancelled_at_shutdown() {
    let (output, folded) = run_recorded("leak_at_shutdown", &[]);
    assert!(output.status.success());
    let task = folded.task_at(&fault_location(
        "src/bin/leak_at_shutdown.rs",
        "alive_at_shutdown",
    ));
    assert_eq!(task.outcome(), Some(Outcome::CancelledAtShutdown));
    assert!(folded.exited, "the recording is marked complete");
}

#[test]
fn nested_spawns_name_their_parents() {
    let (output, folded) = run_recorded("nested", &[]);
    assert!(output.status.success());
    let by_name = |name: &str| {
        folded
            .tasks
            .values()
            .find(|t| t.spawned.name == name)
            .unwrap_or_else(|| panic!("no task named {name}"))
    };
    let (parent, child, grandchild) = (by_name("parent"), by_name("child"), by_name("grandchild"));
    assert_eq!(child.spawned.parent_id, parent.spawned.id);
    assert_eq!(grandchild.spawned.parent_id, child.spawned.id);
    for task in [parent, child, grandchild] {
        assert_eq!(task.outcome(), Some(Outcome::Completed), "{task:?}");
    }
}

#[test]
fn healthy_waiting_tasks_show_no_stall_and_all_complete() {
    let (output, folded) = run_recorded("healthy", &[("TASKSCOPE_WAKERS", "on")]);
    assert!(output.status.success(), "{output:?}");
    assert!(folded.stalls.is_empty(), "{:#?}", folded.stalls);
    let spawned: Vec<_> = folded.spawned_tasks().collect();
    assert!(spawned.len() >= 16, "{}", spawned.len());
    for task in spawned {
        assert_eq!(task.outcome(), Some(Outcome::Completed), "{task:#?}");
    }
}

#[test]
fn a_busy_loop_is_a_stall_of_at_least_its_length() {
    let (output, folded) = run_recorded("cpu_loop", &[]);
    assert!(output.status.success());
    let task = folded.task_at(&fault_location("src/bin/cpu_loop.rs", "stall"));
    let stalls: Vec<_> = folded
        .stalls
        .values()
        .filter(|s| s.task_id == task.spawned.id)
        .collect();
    assert_eq!(stalls.len(), 1, "{stalls:#?}");
    // At least its 500 ms, to within the probe clock's calibration against
    // CLOCK_MONOTONIC (which the loop itself times with `Instant`): parts per million.
    assert!(stalls[0].duration_ns >= 499_000_000, "{:?}", stalls[0]);
    assert_eq!(stalls[0].phase, taskscope_api::v1::StallPhase::Ended as i32);
}

#[test]
fn a_task_that_dropped_its_waker_ends_at_shutdown_with_no_waker_left() {
    let (output, folded) = run_recorded("lost_waker", &[("TASKSCOPE_WAKERS", "on")]);
    assert!(output.status.success());
    let task = folded.task_at(&fault_location("src/bin/lost_waker.rs", "lost_waker"));
    assert_eq!(task.outcome(), Some(Outcome::CancelledAtShutdown));
    let stats = task.ended.as_ref().unwrap().stats.as_ref().unwrap();
    assert_eq!((stats.polls, stats.wakers), (1, 0), "{stats:?}");
    assert_eq!(stats.state, TaskState::Idle as i32, "{stats:?}");
}

#[test]
fn a_task_waiting_on_a_timer_at_shutdown_still_had_its_waker() {
    let (_, folded) = run_recorded("leak_at_shutdown", &[("TASKSCOPE_WAKERS", "on")]);
    let task = folded.task_at(&fault_location(
        "src/bin/leak_at_shutdown.rs",
        "alive_at_shutdown",
    ));
    let stats = task.ended.as_ref().unwrap().stats.as_ref().unwrap();
    // Woken by its timer at the very moment of shutdown, it was in the run queue: the wake
    // consumed its waker, and being scheduled is what proves it was not lost.
    assert!(
        stats.wakers >= 1 || stats.state == TaskState::Scheduled as i32,
        "{stats:?}"
    );
    assert!(stats.polls >= 2, "{stats:?}");
}

#[test]
fn tasks_waiting_on_channels_timers_locks_and_io_at_shutdown_still_hold_a_waker() {
    let (output, folded) = run_recorded("waiting_at_shutdown", &[("TASKSCOPE_WAKERS", "on")]);
    assert!(output.status.success(), "{output:?}");
    let named = |name: &str| {
        folded
            .tasks
            .values()
            .find(|t| t.spawned.name == name)
            .unwrap_or_else(|| panic!("no task {name}"))
    };
    for name in [
        "mpsc", "oneshot", "notify", "sleep", "select", "joinset", "lock", "accept",
    ] {
        let task = named(name);
        assert_eq!(
            task.outcome(),
            Some(Outcome::CancelledAtShutdown),
            "{name}: {task:#?}"
        );
        let stats = task.ended.as_ref().unwrap().stats.as_ref().unwrap();
        let woken = stats.state == TaskState::Scheduled as i32;
        assert!(
            stats.wakers >= 1 || woken,
            "{name} would look like a lost waker: {stats:?}"
        );
    }
    assert_eq!(
        named("detaches_blocking_work").outcome(),
        Some(Outcome::Completed)
    );
}

#[test]
fn an_apps_own_panic_hook_keeps_the_panic_outcome_and_its_time_is_not_a_stall() {
    for route in ["hooks", "tracing"] {
        let (output, folded) = run_recorded("custom_panic_hook", &[("TASKSCOPE_ROUTE", route)]);
        assert!(output.status.success(), "{route}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("app hook: panicked at") && stderr.contains("the job failed"),
            "{route}: the app's own hook still runs: {stderr}"
        );
        let task = folded.task_at(&fault_location("src/bin/custom_panic_hook.rs", "panic"));
        assert_eq!(task.outcome(), Some(Outcome::Panicked), "{route}: {task:?}");
        let ended = task.ended.as_ref().unwrap();
        assert!(
            ended.panic_held_ns >= 250_000_000,
            "{route}: the hook's 300 ms are the panic's: {ended:?}"
        );
        assert!(folded.stalls.is_empty(), "{route}: {:#?}", folded.stalls);
    }
}
