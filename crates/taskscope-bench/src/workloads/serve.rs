//! `serve`: many long-lived tasks waking periodically, like a service's connections and
//! background loops. After a warm-up, measures a fixed window of steady state: the app's
//! CPU and, separately, the instrumentation threads' CPU.

use std::time::{Duration, Instant};

use crate::child::CpuWindow;
use crate::measure;

/// Each task wakes this often.
const PERIOD: Duration = Duration::from_millis(100);

pub(super) async fn run(tasks: u64, window: Duration) -> anyhow::Result<CpuWindow> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut handles = Vec::with_capacity(tasks as usize);
    for i in 0..tasks {
        let mut stopped = stopped.clone();
        handles.push(tokio::spawn(async move {
                let mut ticks = tokio::time::interval(PERIOD);
                let mut state = i;
                loop {
                    tokio::select! {
                        _ = ticks.tick() => {
                            // A little work per wake, as a real handler would do.
                            for _ in 0..64 {
                                state = std::hint::black_box(state.wrapping_mul(6364136223846793005).wrapping_add(1));
                            }
                        }
                        _ = stopped.changed() => return state,
                    }
                }
        }));
        super::pace(i).await;
    }
    // Let the spawn burst settle so that only the steady state is measured.
    tokio::time::sleep(window.min(Duration::from_secs(1))).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    // tokio counts polls with `--cfg tokio_unstable` only; 0 in a build without it.
    let polls = || {
        #[cfg(tokio_unstable)]
        let polls = (0..metrics.num_workers())
            .map(|w| metrics.worker_poll_count(w))
            .sum::<u64>();
        #[cfg(not(tokio_unstable))]
        let polls = {
            let _ = &metrics;
            0u64
        };
        polls
    };
    let (cpu0, instrument0, polls0, start) = (
        measure::process_cpu(),
        measure::instrument_cpu(),
        polls(),
        Instant::now(),
    );
    tokio::time::sleep(window).await;
    let (cpu1, instrument1, polls1, elapsed) = (
        measure::process_cpu(),
        measure::instrument_cpu(),
        polls(),
        start.elapsed(),
    );
    stop.send(true)?;
    super::join_all(handles).await?;
    let instrument = instrument1.saturating_sub(instrument0);
    Ok(CpuWindow {
        window_ns: elapsed.as_nanos() as u64,
        app_cpu_ns: (cpu1.saturating_sub(cpu0))
            .saturating_sub(instrument)
            .as_nanos() as u64,
        instrument_cpu_ns: instrument.as_nanos() as u64,
        tokio_polls: polls1 - polls0,
    })
}
