//! `stall-latency`: tasks whose poll blocks its worker thread for 300 ms, one at a time.
//! Records the wall clock at which each stalling poll began; the harness, watching the
//! probe, records when the stall's first event reaches it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long each poll blocks: three times the probe's default stall threshold.
const STALL: Duration = Duration::from_millis(300);
/// Quiet time between stalls, so that each is reported on its own.
const GAP: Duration = Duration::from_millis(50);

pub(super) async fn run(stalls: u64) -> anyhow::Result<Vec<u64>> {
    let mut starts = Vec::with_capacity(stalls as usize);
    for _ in 0..stalls {
        let started = tokio::spawn(async {
            let started = SystemTime::now();
            // The fault being measured: a blocking call inside a poll.
            std::thread::sleep(STALL);
            started
        })
        .await?;
        starts.push(started.duration_since(UNIX_EPOCH)?.as_nanos() as u64);
        tokio::time::sleep(GAP).await;
    }
    Ok(starts)
}
