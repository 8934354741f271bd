//! A `Semaphore`'s last permit is held by a task that waits for the very task that waits
//! for the permit: a deadlock through a semaphore and a join.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};

#[tokio::main]
async fn main() {
    taskscope::init();
    let connections = Arc::new(Semaphore::new(1));
    let (holding, held) = oneshot::channel::<()>();
    let (give_waiter, waiter) = oneshot::channel::<tokio::task::JoinHandle<()>>();
    let pool = connections.clone();
    tokio::spawn(async move {
        // FAULT: deadlock
        let _permit = pool.acquire().await.unwrap();
        holding.send(()).unwrap();
        let waiter = waiter.await.unwrap();
        taskscope::join(waiter).await.unwrap(); // WAITS: first
    });
    held.await.unwrap();
    let waiter = tokio::spawn(async move {
        // CYCLE: second
        let _permit = connections.acquire().await.unwrap(); // WAITS: second
    });
    give_waiter.send(waiter).unwrap();
    tokio::time::sleep(Duration::from_millis(4000)).await;
    println!("deadlock_semaphore: main returns; the permit is never given back");
}
