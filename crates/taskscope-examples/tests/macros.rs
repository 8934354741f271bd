//! `#[taskscope::main]` and `#[taskscope::test]` install the probe before the runtime.

mod support;

use support::run_recorded;
use taskscope_api::v1::{Outcome, TaskKind};

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

#[taskscope::test]
async fn taskscope_test_runs_the_body_on_a_runtime() {
    let value = tokio::spawn(async { 40 + 2 }).await.unwrap();
    assert_eq!(value, 42);
}

#[taskscope::test(flavor = "multi_thread", worker_threads = 2)]
async fn taskscope_test_takes_tokios_runtime_arguments() -> Result<(), String> {
    let handle = tokio::runtime::Handle::current();
    assert_eq!(handle.metrics().num_workers(), 2);
    Ok(())
}

#[taskscope::test(start_paused = true)]
async fn taskscope_test_starts_paused_like_tokio_test() {
    let before = tokio::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    assert!(before.elapsed() >= std::time::Duration::from_secs(3600));
}

#[taskscope::test(flavor = "current_thread", unhandled_panic = "shutdown_runtime")]
#[should_panic]
async fn taskscope_test_passes_unhandled_panic_to_the_runtime() {
    tokio::spawn(async { panic!("a task panics") });
    // With `shutdown_runtime`, the task's panic ends the runtime, and so the test.
    std::future::pending::<()>().await;
}

/// Compiling is most of this test: both arguments reach tokio's builder.
#[taskscope::test(crate = "tokio", name = "named-runtime")]
async fn taskscope_test_takes_a_renamed_tokio_crate_and_a_runtime_name() {
    assert_eq!(tokio::spawn(async { 7 }).await.unwrap(), 7);
}
