//! What is not a deadlock: a `Mutex` many tasks take in turn, a lock held across a long
//! sleep while others wait, and a lock-order inversion that a timeout breaks after longer
//! than the deadlock threshold. Every task ends; `check` passes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Barrier, Mutex};
use tokio::time::{sleep, timeout};

async fn give_up_after(first: Arc<Mutex<()>>, second: Arc<Mutex<()>>, both_hold: Arc<Barrier>) {
    let _held = first.lock().await;
    both_hold.wait().await;
    // The cycle stands for 1.5 s, past the 1 s threshold, then both give up.
    let _ = timeout(Duration::from_millis(1500), second.lock()).await;
}

#[tokio::main]
async fn main() {
    taskscope::init();
    let mut tasks = tokio::task::JoinSet::new();

    // Contended: forty tasks, each holding the lock a moment, many waiting at once.
    let counter = Arc::new(Mutex::new(0u64));
    for _ in 0..40 {
        let counter = counter.clone();
        tasks.spawn(async move {
            for _ in 0..20 {
                let mut value = counter.lock().await;
                *value += 1;
                tokio::task::yield_now().await;
            }
        });
    }

    // A long critical section: held across 1.5 s of sleep while another task waits.
    let config = Arc::new(Mutex::new(()));
    let (holding, held) = tokio::sync::oneshot::channel();
    let reloading = config.clone();
    tasks.spawn(async move {
        let _reload = reloading.lock().await;
        holding.send(()).unwrap();
        sleep(Duration::from_millis(1500)).await;
    });
    held.await.unwrap();
    tasks.spawn(async move {
        let _read = config.lock().await;
    });

    // A cycle that resolves: two tasks in a lock-order inversion, each giving up.
    let (a, b) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
    let both_hold = Arc::new(Barrier::new(2));
    tasks.spawn(give_up_after(a.clone(), b.clone(), both_hold.clone()));
    tasks.spawn(give_up_after(b, a, both_hold));

    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    println!("lock_contention: every task ended");
}
