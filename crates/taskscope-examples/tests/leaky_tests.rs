//! Tests as a team writes them, one of which leaks a task past its end. Run under
//! `taskscope check -- cargo test -p taskscope-examples --test leaky_tests`, the leak is
//! reported with this test's name.

use std::time::Duration;

#[tokio::test]
async fn leaks_a_background_task() {
    taskscope::init();
    tokio::spawn(async {
        // FAULT: alive_at_shutdown
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn cleans_up_after_itself() {
    taskscope::init();
    let worker = tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
    });
    worker.await.unwrap();
}
