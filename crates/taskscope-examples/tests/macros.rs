//! `#[taskscope::test]` takes tokio's runtime arguments and runs the test's body on that
//! runtime, as `#[tokio::test]` does. (What `#[taskscope::main]` gives a program is seen
//! end to end in `tests/tests/taskscope_main.rs`.)

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
