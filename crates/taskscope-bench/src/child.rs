//! The measured process: installs one mode, runs one workload, reports on stdout.
//!
//! The conversation with the parent is three lines: the child says `ready` once its
//! instrumentation and runtime are up, waits for `go` on stdin (the parent may first attach
//! a watching client), then prints `result <json>` and exits. Only the workload itself is
//! timed, so process start-up and the exit-time flush are not in the wall time.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::measure;
use crate::mode::Mode;
use crate::workload::Workload;
use crate::workloads;

/// The hidden subcommand that runs one measurement.
pub(crate) const SUBCOMMAND: &str = "__run";

/// What a child tells the parent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ChildReport {
    /// Wall time of the workload itself.
    pub(crate) wall_ns: u64,
    /// CPU time of the whole process (every thread) during the workload: start-up and
    /// exit costs of the instrumentation are left out, its threads' work is not.
    pub(crate) cpu_ns: u64,
    /// Polls of the workload's own tasks, counted exactly (0 where not counted).
    pub(crate) polls: u64,
    /// Tasks spawned on the runtime.
    pub(crate) spawned: u64,
    /// CPU time the instrumentation's own threads used during the workload.
    pub(crate) instrument_cpu_ns: u64,
    /// `serve`: the steady-state window.
    pub(crate) window: Option<CpuWindow>,
    /// `live`: how much resident memory the idle tasks added.
    pub(crate) live: Option<LiveMemory>,
    /// `stall-latency`: wall clock (Unix ns) at which each stalling poll began.
    pub(crate) stall_starts_unix_ns: Vec<u64>,
}

/// CPU use over a fixed window of steady state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct CpuWindow {
    pub(crate) window_ns: u64,
    /// The process minus the instrumentation's threads.
    pub(crate) app_cpu_ns: u64,
    pub(crate) instrument_cpu_ns: u64,
    /// tokio's `worker_poll_count` over the window (an undercount, for orientation only).
    pub(crate) tokio_polls: u64,
}

/// Resident memory before and after spawning idle tasks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct LiveMemory {
    pub(crate) tasks: u64,
    pub(crate) rss_growth_bytes: u64,
}

/// What a workload measured beyond time.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    pub(crate) window: Option<CpuWindow>,
    pub(crate) live: Option<LiveMemory>,
    pub(crate) stall_starts_unix_ns: Vec<u64>,
}

/// Runs `__run <mode> <workload> <size> <serve-window-ms> <linger-ms>`.
pub(crate) fn main(args: &[String]) -> anyhow::Result<()> {
    let [mode, workload, size, window_ms, linger_ms] = args else {
        bail!(
            "usage: {SUBCOMMAND} <mode> <workload> <size> <serve-window-ms> <linger-ms> \
             (the harness runs this; run taskscope-bench --help instead)"
        );
    };
    let mode: Mode = mode.parse().map_err(anyhow::Error::msg)?;
    let workload: Workload = workload.parse().map_err(anyhow::Error::msg)?;
    let size: u64 = size.parse().context("size must be a whole number")?;
    let window = Duration::from_millis(window_ms.parse().context("window must be in ms")?);
    let linger = Duration::from_millis(linger_ms.parse().context("linger must be in ms")?);

    mode.install()?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    mode.configure_runtime(&mut builder);
    let runtime = builder.build().context("cannot build the tokio runtime")?;
    say("ready")?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != "go" {
        bail!("expected `go` from the harness, got {line:?}");
    }

    let spawned_before = spawned_tasks(&runtime);
    let instrument_before = measure::instrument_cpu();
    let cpu_before = measure::process_cpu();
    let start = Instant::now();
    let extra = runtime.block_on(workloads::run(workload, size, window))?;
    let wall = start.elapsed();
    let cpu = measure::process_cpu().saturating_sub(cpu_before);
    let report = ChildReport {
        wall_ns: wall.as_nanos() as u64,
        cpu_ns: cpu.as_nanos() as u64,
        polls: workloads::polls(),
        spawned: spawned_tasks(&runtime) - spawned_before,
        instrument_cpu_ns: (measure::instrument_cpu().saturating_sub(instrument_before)).as_nanos()
            as u64,
        window: extra.window,
        live: extra.live,
        stall_starts_unix_ns: extra.stall_starts_unix_ns,
    };
    say(&format!("result {}", serde_json::to_string(&report)?))?;
    // A watching client gets the last deltas only if the probe gets to publish them
    // before the process exits.
    std::thread::sleep(linger);
    // Tasks left on the runtime (e.g. echo's server) must not hold the exit up.
    runtime.shutdown_background();
    Ok(())
}

fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Tasks the runtime has spawned, where tokio counts them (`--cfg tokio_unstable`); 0 in a
/// build without the cfg, which the bench runs to measure the probe's stable mode.
fn spawned_tasks(runtime: &tokio::runtime::Runtime) -> u64 {
    #[cfg(tokio_unstable)]
    let spawned = runtime.metrics().spawned_tasks_count();
    #[cfg(not(tokio_unstable))]
    let spawned = {
        let _ = runtime;
        0
    };
    spawned
}
