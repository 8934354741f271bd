//! `locks`: tokio `Mutex`es taken and given back by tasks that contend for them, and new
//! ones created as they go: what a resource costs each mode (tokio's resource spans and
//! state updates, when a subscriber takes them).

use std::sync::Arc;

use tokio::sync::Mutex;

/// Tasks sharing the locks.
const TASKS: u64 = 64;
/// Locks shared among them, so that some acquires wait.
const LOCKS: usize = 8;
/// Each task creates (and drops) a lock of its own every this many acquires.
const CREATE_EVERY: u64 = 16;

pub(super) async fn run(acquires: u64) -> anyhow::Result<()> {
    let locks: Arc<Vec<Mutex<u64>>> = Arc::new((0..LOCKS).map(|_| Mutex::new(0)).collect());
    let per_task = (acquires / TASKS).max(1);
    let mut handles = Vec::with_capacity(TASKS as usize);
    for task in 0..TASKS {
        let locks = locks.clone();
        handles.push(tokio::spawn(super::counted::counted(async move {
            for i in 0..per_task {
                let lock = &locks[((task + i) % LOCKS as u64) as usize];
                let mut value = lock.lock().await;
                *value += 1;
                if i % 4 == 0 {
                    // Held across a yield now and then: others wait on it.
                    tokio::task::yield_now().await;
                }
                drop(value);
                if i % CREATE_EVERY == 0 {
                    let own = Mutex::new(i);
                    drop(own.lock().await);
                }
            }
        })));
    }
    super::join_all(handles).await?;
    Ok(())
}
