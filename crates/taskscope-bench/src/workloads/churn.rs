//! `churn`: millions of short-lived tasks, a bounded number alive at any time. Whatever
//! the instrumentation keeps per task and fails to let go of shows up as peak RSS.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Tasks alive at once.
const IN_FLIGHT: u32 = 1_000;

pub(super) async fn run(tasks: u64) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT as usize));
    for i in 0..tasks {
        let slot = slots.clone().acquire_owned().await?;
        tokio::spawn(super::counted::counted(async move {
            tokio::task::yield_now().await;
            drop(slot);
        }));
        // A free slot is taken without waiting, so without this the loop would run in
        // one long poll.
        super::pace(i).await;
    }
    // Every slot back means every task has finished.
    let _all = slots.acquire_many(IN_FLIGHT).await?;
    Ok(())
}
