//! `leaky_tests.rs` written with `#[taskscope::test]`: the probe on the hooks route. A
//! recording of this binary names the test that leaked its task, as on the tracing route.

use std::time::Duration;

#[taskscope::test]
async fn leaks_a_background_task_on_the_hooks_route() {
    tokio::spawn(async {
        // FAULT: alive_at_shutdown
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[taskscope::test]
async fn cleans_up_after_itself_on_the_hooks_route() {
    let worker = tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
    });
    worker.await.unwrap();
}
