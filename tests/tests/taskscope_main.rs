//! `#[taskscope::main]` installs the probe before the runtime: the examples built with it,
//! run for real and recorded, show the body of `main` as a task and their workers idle.

use taskscope_api::v1::{Outcome, TaskKind};
use taskscope_e2e::run_recorded;

#[test]
fn a_stall_in_the_body_of_main_is_seen_with_taskscope_main() {
    let (output, folded) = run_recorded("main_stall", &[]);
    assert!(output.status.success(), "{output:?}");
    let main_task = folded
        .tasks
        .values()
        .find(|t| t.spawned.kind == TaskKind::BlockOn as i32)
        .expect("the body of main is a task");
    assert_eq!(main_task.outcome(), Some(Outcome::Completed));
    let stall = folded
        .stalls
        .values()
        .find(|s| s.task_id == main_task.spawned.id)
        .expect("its blocking sleep is a stall");
    assert!(stall.duration_ns >= 400_000_000, "{stall:?}");
}

#[test]
fn worker_threads_waiting_for_work_are_not_stalled() {
    let (output, folded) = run_recorded("workers_main", &[]);
    assert!(output.status.success(), "{output:?}");
    assert!(folded.stalls.is_empty(), "{:#?}", folded.stalls);
    let spawned: Vec<_> = folded.spawned_tasks().collect();
    assert_eq!(spawned.len(), 20);
    assert!(
        spawned
            .iter()
            .all(|t| t.outcome() == Some(Outcome::Completed)),
        "{spawned:#?}"
    );
}
