//! The synthetic apps, one module each. Each runs inside the child's runtime and returns
//! whatever it measured beyond time.

mod churn;
mod counted;
mod echo;
mod live;
mod locks;
mod pingpong;
mod serve;
mod spawn;
mod stall;
mod timers;

use std::time::Duration;

use crate::child::Extra;
use crate::workload::Workload;

pub(crate) use counted::polls;

/// Runs `workload` at `size`; `serve_window` is how long `serve` measures.
pub(crate) async fn run(
    workload: Workload,
    size: u64,
    serve_window: Duration,
) -> anyhow::Result<Extra> {
    let mut extra = Extra::default();
    match workload {
        Workload::Spawn => spawn::run(size).await?,
        Workload::Pingpong => pingpong::run(size).await?,
        Workload::Timers => timers::run(size).await?,
        Workload::Echo => echo::run(size).await?,
        Workload::Serve => extra.window = Some(serve::run(size, serve_window).await?),
        Workload::Churn => churn::run(size).await?,
        Workload::Live => extra.live = Some(live::run(size).await?),
        Workload::StallLatency => extra.stall_starts_unix_ns = stall::run(size).await?,
        Workload::Locks => locks::run(size).await?,
    }
    Ok(extra)
}

/// Tasks spawned between two yields of the spawning task. Spawning in batches keeps its
/// polls far below the probe's 100 ms stall threshold, as a real accept loop's would be: a
/// workload that stalled its own main task would measure the stall report (a stack capture
/// and its symbolization) instead of the per-task cost.
const SPAWN_BATCH: u64 = 1024;

/// Called after each spawn: yields once every [`SPAWN_BATCH`] spawns.
async fn pace(spawned: u64) {
    if spawned % SPAWN_BATCH == SPAWN_BATCH - 1 {
        tokio::task::yield_now().await;
    }
}

/// Awaits every task, failing on the first that panicked.
async fn join_all<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> anyhow::Result<Vec<T>> {
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await?);
    }
    Ok(results)
}
