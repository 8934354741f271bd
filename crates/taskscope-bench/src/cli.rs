//! Command-line flags, and the validated plan they turn into.

mod commands;

use commands::Command;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use crate::guard::GuardPlan;
use crate::guard::docs::DocsPlan;
use crate::mode::Mode;
use crate::workload::{Timing, Workload};

const AFTER_HELP: &str = "\
MODES
  none              tokio as this harness builds it for the probe (the same
                    --cfg tokio_unstable, tokio's `tracing` and `taskdump` features), no
                    subscriber: what every ratio of a normal run is taken against
  plain             (not run by default) plain tokio as an app without the probe builds it:
                    no `tracing`/`taskdump` feature, no --cfg tokio_unstable. The baseline
                    the guard's ratios and the cost targets are taken against. Runs a
                    second build of this harness, which must exist first:
                      RUSTFLAGS= cargo build --release -p taskscope-bench \
                        --no-default-features --target-dir target/plain
                    Against none: what the probe's tokio features cost before it does a thing
  taskscope         #[taskscope::main] defaults (the hooks route): gRPC server on a free
                    port, nobody watching
  taskscope-lean    (not run by default) as taskscope, in an app that builds the probe with
                    default-features = false: the hooks route on tokio without its
                    `tracing` feature. Runs a third build of this harness:
                      cargo build --release -p taskscope-bench --no-default-features \
                        --features probe-hooks --target-dir target/lean
  taskscope-init    taskscope::init() in a #[tokio::main] app (the tracing route)
  taskscope-noholders (not run by default) as taskscope-init, with holder tracking off
                    (TASKSCOPE_HOLDERS=off): against taskscope-init, what holders cost
  taskscope+watch   as taskscope, with a client consuming the Watch stream for the whole run
  taskscope+watch-unfolded (not run by default) as taskscope+watch, with every task sent
                    one by one (TASKSCOPE_FOLD=off): against taskscope+watch, what counting
                    short-lived tasks by spawn site saves
  taskscope+record  as taskscope, recording to a temporary file (TASKSCOPE_RECORD)
  taskscope-noflight (not run by default) as taskscope, with the flight recorder off
                    (TASKSCOPE_FLIGHT=off): against taskscope, what the recorder costs
  taskscope+wakers  as taskscope, with waker tracking on (TASKSCOPE_WAKERS=on, which takes
                    the tracing route; what `taskscope check` pays to find lost wakers)
  console           console-subscriber 0.5 as console_subscriber::init() sets it up
  taskscope-layer   (not run by default) the probe's layer alone on a bare registry, via
                    Builder::build, without the log layer init() adds
  taskscope+metrics (not run by default) as taskscope, with the Prometheus endpoint on
                    (TASKSCOPE_METRICS_BIND) and scraped once a second

WORKLOADS (full size; --quick uses about 1/100)
  spawn          200k tiny tasks spawned and joined              -> cost per spawn
  pingpong       1k task pairs, 2M messages over bounded mpsc    -> cost per poll (worst case)
  timers         10k tasks x 20 sleeps of 1 ms
  echo           loopback TCP echo, 50 clients, 100k round trips (real I/O)
  serve          5k tasks waking every 100 ms, 5 s steady state  -> app and probe CPU, % of a core
  churn          2M short-lived tasks, 1k alive at a time        -> peak RSS
  live           100k idle tasks                                 -> resident memory per task
  stall-latency  100 polls blocking 300 ms; a client measures when each stall's first
                 event arrives                                   -> p50/p99 (taskscope modes only)
  locks          64 tasks, 1M tokio Mutex acquires over 8 locks, a new lock every 16
                 acquires                                        -> cost per resource operation

HOW IT MEASURES
  Each run is a fresh child process (this binary, re-executed). After one warm-up run per
  workload, every repetition runs all selected modes in turn (A B A B ...), so slow drift of
  the machine hits all modes alike. Wall time is the workload's own (inside the child);
  CPU time and peak RSS are the child's (wait4). Ratios to `none` are taken repetition by
  repetition, then the median and min-max of those ratios are shown. A run that exceeds
  --timeout or --rss-cap is killed and shown as such, never waited for.

EXIT STATUS
  0 done (guard: nothing guarded got worse; docs --check: the docs are up to date)
  1 guard: a guarded ratio got worse beyond the noise; docs --check: the docs are stale
  2 an error: bad flags, a missing or malformed ratios file, a run that did not finish

EXAMPLES
  cargo run --release -p taskscope-bench -- --quick
  cargo run --release -p taskscope-bench -- --reps 5 --modes none,taskscope
  cargo run --release -p taskscope-bench -- --reps 5 --modes none,taskscope,taskscope-noflight
  cargo run --release -p taskscope-bench -- --workloads pingpong,spawn --modes none,console --scale 0.1
  cargo run --release -p taskscope-bench -- --json > bench.json
  cargo run --release -p taskscope-bench -- guard          (before a release; see guard --help)";

/// Measures what the taskscope probe costs a tokio app, against plain tokio and
/// console-subscriber: each workload in separate processes, modes interleaved over
/// repetitions, medians and ratios to `none`.
#[derive(Debug, Parser)]
#[command(
    name = "taskscope-bench",
    version,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Tiny sizes, one repetition, no warm-up: proves the harness works in seconds (for CI);
    /// its timings mean nothing.
    #[arg(long)]
    quick: bool,

    /// Workloads to run, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<Workload>,

    /// Modes to compare, comma-separated (default: all but those marked "not run by default"). `none` is
    /// always added: ratios need it.
    #[arg(long, value_delimiter = ',')]
    modes: Vec<Mode>,

    /// Repetitions of each (workload, mode) after the warm-up (default 3; 1 with --quick).
    #[arg(long)]
    reps: Option<u32>,

    /// Multiplies every workload's size (e.g. 0.1 so that console-subscriber finishes).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,

    /// Sets one workload's size exactly, e.g. `--size churn=500000` (repeatable).
    #[arg(long = "size", value_name = "WORKLOAD=N")]
    sizes: Vec<String>,

    /// Kills a run that takes longer than this many seconds (default 120; 30 with --quick).
    #[arg(long)]
    timeout: Option<u64>,

    /// Kills a run whose resident memory passes this many MiB.
    #[arg(long, default_value_t = 4096)]
    rss_cap: u64,

    /// Prints the full results as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    json: bool,

    /// Also writes the full JSON results to this file (the table still goes to stdout).
    #[arg(long, value_name = "FILE")]
    save: Option<std::path::PathBuf>,
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Action {
    /// Measure and print a report.
    Bench(Plan),
    /// Guard against regressions, or record the baseline.
    Guard(GuardPlan),
    /// Regenerate or check the docs' ratios table.
    Docs(DocsPlan),
}

/// What to run, validated.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) quick: bool,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) modes: Vec<Mode>,
    pub(crate) reps: u32,
    pub(crate) warmup: bool,
    pub(crate) sizes: BTreeMap<Workload, u64>,
    pub(crate) timing: Timing,
    pub(crate) timeout: Duration,
    pub(crate) rss_cap_bytes: u64,
    pub(crate) json: bool,
    pub(crate) save: Option<std::path::PathBuf>,
    /// The command line, for the report.
    pub(crate) command: String,
}

/// Parses the command line into what to do.
pub(crate) fn parse() -> anyhow::Result<Action> {
    action(Args::parse())
}

fn action(mut args: Args) -> anyhow::Result<Action> {
    let command = || std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    match args.command.take() {
        None => plan(args).map(Action::Bench),
        Some(Command::Guard(guard)) => guard.plan(command()).map(Action::Guard),
        Some(Command::Docs(docs)) => Ok(Action::Docs(docs.plan())),
    }
}

fn plan(args: Args) -> anyhow::Result<Plan> {
    if !(args.scale > 0.0 && args.scale.is_finite()) {
        bail!("--scale must be a positive number, e.g. 0.1");
    }
    let workloads = if args.workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        dedup(args.workloads)
    };
    let mut modes = if args.modes.is_empty() {
        Mode::DEFAULT.to_vec()
    } else {
        dedup(args.modes)
    };
    if !modes.contains(&Mode::None) {
        modes.insert(0, Mode::None);
    }
    modes.sort();
    for &mode in &modes {
        // A missing build is found now, not after the other modes' runs.
        crate::builds::binary_for(mode)?;
    }
    let mut sizes: BTreeMap<Workload, u64> = workloads
        .iter()
        .map(|&w| {
            let base = if args.quick {
                w.quick_size()
            } else {
                w.full_size()
            };
            (w, ((base as f64 * args.scale).round() as u64).max(1))
        })
        .collect();
    for setting in &args.sizes {
        let (name, value) = setting
            .split_once('=')
            .with_context(|| format!("--size {setting}: write WORKLOAD=N, e.g. churn=500000"))?;
        let workload: Workload = name.parse().map_err(anyhow::Error::msg)?;
        let size: u64 = value
            .parse()
            .with_context(|| format!("--size {setting}: `{value}` is not a whole number"))?;
        if size == 0 {
            bail!("--size {setting}: the size must be at least 1");
        }
        sizes.insert(workload, size);
    }
    let reps = args.reps.unwrap_or(if args.quick { 1 } else { 3 });
    if reps == 0 {
        bail!("--reps must be at least 1");
    }
    Ok(Plan {
        quick: args.quick,
        workloads,
        modes,
        reps,
        warmup: !args.quick,
        sizes,
        timing: if args.quick {
            Timing::quick()
        } else {
            Timing::full()
        },
        timeout: Duration::from_secs(args.timeout.unwrap_or(if args.quick { 30 } else { 120 })),
        rss_cap_bytes: args.rss_cap.saturating_mul(1024 * 1024),
        json: args.json,
        save: args.save,
        command: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
    })
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut unique = Vec::with_capacity(items.len());
    for item in items {
        if !unique.contains(&item) {
            unique.push(item);
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn action_of(args: &[&str]) -> anyhow::Result<Action> {
        let mut argv = vec!["taskscope-bench"];
        argv.extend_from_slice(args);
        action(Args::try_parse_from(argv)?)
    }

    fn plan_of(args: &[&str]) -> anyhow::Result<Plan> {
        match action_of(args)? {
            Action::Bench(plan) => Ok(plan),
            other => panic!("not a bench plan: {other:?}"),
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn none_is_always_measured_because_ratios_need_it() {
        let plan = plan_of(&["--modes", "console", "--workloads", "spawn"]).unwrap();
        assert_eq!(plan.modes, [Mode::None, Mode::Console]);
    }

    #[test]
    fn sizes_scale_and_can_be_set_one_by_one() {
        let plan = plan_of(&["--scale", "0.5", "--size", "churn=10"]).unwrap();
        assert_eq!(plan.sizes[&Workload::Spawn], 100_000);
        assert_eq!(plan.sizes[&Workload::Churn], 10);
        assert!(plan_of(&["--size", "churn"]).is_err());
        assert!(plan_of(&["--size", "nothing=3"]).is_err());
        assert!(plan_of(&["--modes", "fast"]).is_err());
    }

    #[test]
    fn the_guard_takes_seven_repetitions_and_the_committed_file_by_default() {
        let Action::Guard(plan) = action_of(&["guard"]).unwrap() else {
            panic!("not a guard plan");
        };
        assert_eq!(plan.reps, 7);
        assert!(!plan.bless);
        assert!(plan.ratios.ends_with("taskscope-bench/ratios.json"));
        assert!(plan.workloads.is_empty());
    }

    #[test]
    fn the_guard_refuses_what_it_cannot_judge() {
        assert!(action_of(&["guard", "--reps", "2"]).is_err());
        assert!(action_of(&["guard", "--workloads", "serve"]).is_err());
        assert!(action_of(&["guard", "--workloads", "nothing"]).is_err());
        assert!(action_of(&["guard", "--bless", "--workloads", "spawn"]).is_err());
        assert!(action_of(&["guard", "--reps", "3"]).is_ok());
    }
}
