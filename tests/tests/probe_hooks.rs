//! The hooks route (`#[taskscope::main]`) and the tracing route (`taskscope::init()`, or
//! `TASKSCOPE_ROUTE=tracing`) see the same program the same way.

use taskscope_api::v1::{self, Outcome, TaskKind};
use taskscope_e2e::{Folded, fault_location, run_recorded};

const SOURCE: &str = "src/bin/hooks_route.rs";

fn run(route: &str) -> Folded {
    let (output, folded) = run_recorded("hooks_route", &[("TASKSCOPE_ROUTE", route)]);
    assert!(output.status.success(), "{route}: {output:?}");
    assert!(folded.exited, "{route}: the recording is complete");
    folded
}

fn check_tasks_parents_outcomes_and_stall(route: &str, folded: &Folded) {
    let at = |kind: &str| folded.task_at(&fault_location(SOURCE, kind));
    let (parent, child) = (at("parent"), at("child"));
    assert_eq!(child.spawned.parent_id, parent.spawned.id, "{route}");
    for task in [parent, child, at("by_hand")] {
        assert_eq!(
            task.outcome(),
            Some(Outcome::Completed),
            "{route}: {task:?}"
        );
    }

    let panicked = at("panic");
    assert_eq!(panicked.outcome(), Some(Outcome::Panicked), "{route}");
    let ended = panicked.ended.as_ref().unwrap();
    assert_eq!(ended.panic_message, "boom on either route", "{route}");

    assert_eq!(
        at("alive_at_shutdown").outcome(),
        Some(Outcome::CancelledAtShutdown),
        "{route}"
    );

    let stalled = at("stall");
    let stall = folded
        .stalls
        .values()
        .find(|s| s.task_id == stalled.spawned.id)
        .unwrap_or_else(|| {
            panic!(
                "{route}: no stall of the blocking task: {:#?}",
                folded.stalls
            )
        });
    assert!(stall.duration_ns >= 300_000_000, "{route}: {stall:?}");
    let blocking_line = format!(
        "hooks_route.rs:{}",
        taskscope_e2e::marked_line(SOURCE, "BLOCKS")
    );
    let named = stall.samples.iter().any(|sample| {
        sample
            .frames
            .iter()
            .any(|f| f.user && f.location.contains(&blocking_line))
    });
    assert!(
        named,
        "{route}: no sample names {blocking_line}: {stall:#?}"
    );

    let stats = stalled
        .ended
        .as_ref()
        .and_then(|e| e.stats.as_ref())
        .expect("the stalled task's final stats");
    assert!(stats.busy_ns >= 300_000_000, "{route}: {stats:?}");
    assert!(stats.polls >= 1, "{route}: {stats:?}");

    // tokio ends it inside the spawn (on the hooks route, before the spawn hook runs).
    let late_line = taskscope_e2e::marked_line(SOURCE, "FAULT: onto_closed");
    let late = folded
        .tasks
        .values()
        .find(|t| t.location().file.ends_with("hooks_route.rs") && t.location().line == late_line)
        .unwrap_or_else(|| panic!("{route}: no task spawned at line {late_line}"))
        .outcome();
    if route == "hooks" {
        assert_eq!(late, Some(Outcome::CancelledAtShutdown), "{route}");
    } else {
        assert!(
            matches!(
                late,
                Some(Outcome::CancelledAtShutdown | Outcome::Cancelled)
            ),
            "{route}: {late:?}"
        );
    }

    let body = folded
        .tasks
        .values()
        .find(|t| t.spawned.kind == TaskKind::BlockOn as i32)
        .unwrap_or_else(|| panic!("{route}: the body of main is a task"));
    assert_eq!(
        body.outcome(),
        Some(Outcome::Completed),
        "{route}: {body:?}"
    );
}

#[test]
fn both_routes_see_the_same_tasks_parents_outcomes_and_stall() {
    for route in ["hooks", "tracing"] {
        check_tasks_parents_outcomes_and_stall(route, &run(route));
    }
}

#[test]
fn each_route_shows_what_only_it_can_see() {
    // Task names and the blocking pool come from tokio's spans: the tracing route has them.
    let tracing = run("tracing");
    assert!(
        tracing
            .tasks
            .values()
            .any(|t| t.spawned.kind == TaskKind::Blocking as i32),
        "the tracing route sees the runtime's blocking tasks"
    );
    let hooks = run("hooks");
    assert!(
        hooks
            .tasks
            .values()
            .all(|t| t.spawned.kind != TaskKind::Blocking as i32),
        "the hooks route sees no blocking tasks: {:#?}",
        hooks.tasks
    );
    // The hooks route names the body after the function it runs.
    assert!(
        hooks
            .tasks
            .values()
            .any(|t| t.spawned.kind == TaskKind::BlockOn as i32 && t.spawned.name == "main"),
        "{:#?}",
        hooks.tasks
    );
}

fn any_wake_counted(folded: &Folded) -> bool {
    folded
        .tasks
        .values()
        .flat_map(|t| {
            t.stats
                .iter()
                .chain(t.ended.iter().flat_map(|e| e.stats.iter()))
        })
        .any(|s| s.wakes > 0)
}

#[test]
fn waker_tracking_never_moves_a_macro_program_off_the_hooks_route() {
    // The tracing route would install a global tracing subscriber, which breaks every app
    // that installs its own: asking for wakers keeps the hooks route and says why.
    let (output, folded) = run_recorded("hooks_route", &[("TASKSCOPE_WAKERS", "on")]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        folded.process.as_ref().unwrap().route,
        v1::Route::Hooks as i32
    );
    assert!(!folded.process.as_ref().unwrap().waker_tracking);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TASKSCOPE_WAKERS=on is ignored on the hooks route")
            && stderr.contains("TASKSCOPE_ROUTE=tracing"),
        "{stderr}"
    );
    // `auto`, what `taskscope check` asks for, is silent.
    let (output, _) = run_recorded("hooks_route", &[("TASKSCOPE_WAKERS", "auto")]);
    assert!(!String::from_utf8_lossy(&output.stderr).contains("taskscope: warning"));
}

#[test]
fn waker_tracking_on_the_tracing_route_counts_wakes() {
    let (output, folded) = run_recorded(
        "hooks_route",
        &[("TASKSCOPE_WAKERS", "auto"), ("TASKSCOPE_ROUTE", "tracing")],
    );
    assert!(output.status.success(), "{output:?}");
    assert!(folded.process.as_ref().unwrap().waker_tracking);
    assert!(
        any_wake_counted(&folded),
        "wakes are counted: {:#?}",
        folded.tasks
    );
}
