//! `#[taskscope::main]` puts the runtime on the probe's hooks route (tokio's runtime hooks
//! instead of its tracing spans). The same program, seen through either route, must give
//! the same tasks, parents, outcomes and stalls: `tests/tests/probe_hooks.rs` (at the workspace root) checks both.

use std::time::Duration;

/// Holds the worker thread the way a blocking call in async code does.
fn load_settings_blocking() {
    std::thread::sleep(Duration::from_millis(400)); // BLOCKS
}

#[taskscope::main(worker_threads = 2)]
async fn main() {
    // Let a watcher (if any) connect before anything happens.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let parent = tokio::spawn(async {
        // FAULT: parent
        let child = tokio::spawn(async { 2 }); // FAULT: child
        child.await.unwrap() + 1
    });
    assert_eq!(parent.await.unwrap(), 3);

    let panicking = tokio::spawn(async { panic!("boom on either route") }); // FAULT: panic
    assert!(panicking.await.unwrap_err().is_panic());

    let stalling = tokio::spawn(async { load_settings_blocking() }); // FAULT: stall
    stalling.await.unwrap();

    // Still waiting when main returns and its runtime shuts down.
    tokio::spawn(std::future::pending::<()>()); // FAULT: alive_at_shutdown

    // A runtime built by hand gets the same hooks from `taskscope::hooks::install`.
    let by_hand = std::thread::spawn(|| {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        taskscope::hooks::install(&mut builder);
        let runtime = builder.enable_all().build().unwrap();
        let five = runtime.block_on(async {
            tokio::spawn(async { 5 }).await.unwrap() // FAULT: by_hand
        });
        // Spawned onto a runtime that has shut down: tokio cancels it inside the spawn.
        let handle = runtime.handle().clone();
        drop(runtime);
        let late = handle.spawn(async {}); // FAULT: onto_closed
        while !late.is_finished() {
            std::thread::yield_now();
        }
        five
    });
    assert_eq!(by_hand.join().unwrap(), 5);
    println!("hooks_route: done");
}
