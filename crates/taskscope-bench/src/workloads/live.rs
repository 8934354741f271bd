//! `live`: many idle tasks alive at once, as in a server holding many quiet connections.
//! Reports how much resident memory they added, once the instrumentation has taken them
//! in; compared with `none` this is the instrumentation's memory per task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::child::LiveMemory;
use crate::measure;

/// Long enough for a probe to drain its queue and publish at least twice.
const SETTLE: Duration = Duration::from_millis(500);

pub(super) async fn run(tasks: u64) -> anyhow::Result<LiveMemory> {
    let before = measure::rss_bytes("self").context("cannot read /proc/self/statm")?;
    let (release, released) = tokio::sync::watch::channel(false);
    let polled = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::with_capacity(tasks as usize);
    for i in 0..tasks {
        let mut released = released.clone();
        let polled = polled.clone();
        handles.push(tokio::spawn(async move {
            polled.fetch_add(1, Ordering::Relaxed);
            let _ = released.changed().await;
        }));
        super::pace(i).await;
    }
    while polled.load(Ordering::Relaxed) < tasks {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(SETTLE).await;
    let after = measure::rss_bytes("self").context("cannot read /proc/self/statm")?;
    release.send(true)?;
    super::join_all(handles).await?;
    Ok(LiveMemory {
        tasks,
        rss_growth_bytes: after.saturating_sub(before),
    })
}
