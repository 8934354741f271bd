//! A test that starts by spawning a crowd of tasks, written the way a connection pool's
//! test suite would: 25,000 `tokio::spawn` calls before the body's first `.await`. In a
//! debug build that first poll takes tens of milliseconds of the app's own time, and the
//! probe's spawn hook runs inside it once per spawn: that time is the probe's, and must
//! never make the poll a stall of the test's.

/// How many tasks the test spawns before it first awaits.
const TASKS: usize = 25_000;

#[taskscope::test]
async fn spawns_a_crowd_before_its_first_await() {
    let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
    for n in 0..TASKS {
        let done = done.clone();
        tokio::spawn(async move {
            let _ = done.send(n);
        });
    }
    drop(done);
    let mut count = 0;
    while finished.recv().await.is_some() {
        count += 1;
    }
    assert_eq!(count, TASKS);
}
