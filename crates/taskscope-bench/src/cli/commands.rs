//! The subcommands, `guard` and `docs`: their flags, their help, and the plans they turn
//! into.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Subcommand;

use crate::guard::checks::CHECKS;
use crate::guard::docs::{self, DocsPlan};
use crate::guard::{GuardPlan, ratios_file};
use crate::workload::Workload;

const GUARD_HELP: &str = "\
WHAT IT MEASURES
  Wall time (and CPU time) of one mode over another, each repetition running every mode
  of a workload in turn, on pingpong, spawn, timers and echo: the hooks route
  (taskscope), the hooks route built without tokio's `tracing` feature (taskscope-lean)
  and the tracing route (taskscope-init) over plain tokio built without the probe
  (plain); taskscope over taskscope-noflight (the flight recorder's own cost) on pingpong,
  spawn and timers; console-subscriber over plain tokio at a tenth of the size, for
  reference (never fails).

  plain and taskscope-lean run builds of this harness of their own (target/plain,
  target/lean beside this binary's target directory). The guard brings both up to date
  with cargo before it measures, so the first run takes some minutes longer.

THE RULE
  Each ratio is judged by its wall-time median and by its CPU-time median over the
  repetitions (CPU time moves least when other processes share the machine). The noise
  of a median is half the interquartile range (p75 - p25) of the committed repetitions
  plus half that of this run's, and at least 5% of the committed median. A median above
  the committed one by more than its noise is WORSE, and a ratio with either median
  worse fails the guard (exit 1); a median below by more is better (reported; record it
  with --bless); otherwise within the noise. A guarded ratio that the ratios file does
  not have fails too: there is nothing to vouch for it with.

EXAMPLES
  cargo run --release -p taskscope-bench -- guard
  cargo run --release -p taskscope-bench -- guard --reps 11
  cargo run --release -p taskscope-bench -- guard --workloads pingpong,spawn
  cargo run --release -p taskscope-bench -- guard --save /tmp/ratios-now.json
  cargo run --release -p taskscope-bench -- guard --ratios /tmp/ratios-before.json
  cargo run --release -p taskscope-bench -- guard --timeout 300
  cargo run --release -p taskscope-bench -- guard --bless --reps 15   (then: docs)";

const DOCS_HELP: &str = "\
The table sits between the lines <!-- ratios:begin --> and <!-- ratios:end --> of the
page; nothing else is touched. The workspace's tests run `docs --check`.

EXAMPLES
  cargo run -p taskscope-bench -- docs
  cargo run -p taskscope-bench -- docs --check
  cargo run -p taskscope-bench -- docs --ratios /tmp/ratios-now.json --doc /tmp/performance.md";

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Before a release: measures a fixed set of ratios over many repetitions and fails
    /// (exit 1) when a median got worse than the committed one (`ratios.json`) beyond
    /// the measured noise; `--bless` records them instead.
    #[command(after_help = GUARD_HELP)]
    Guard(GuardArgs),
    /// Regenerates the ratios table of docs/performance.md from the committed ratios
    /// file; `--check` only says whether it is up to date (exit 1 when not).
    #[command(after_help = DOCS_HELP)]
    Docs(DocsArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct GuardArgs {
    /// Repetitions of every ratio (at least 3: the noise is measured from their spread).
    #[arg(long, default_value_t = 7)]
    reps: u32,

    /// Writes this run to the ratios file instead of comparing with it (every workload:
    /// not with --workloads).
    #[arg(long, conflicts_with = "workloads")]
    bless: bool,

    /// The ratios file to compare with or write (default: the committed
    /// crates/taskscope-bench/ratios.json).
    #[arg(long, value_name = "FILE")]
    ratios: Option<PathBuf>,

    /// Only the ratios of these workloads, comma-separated (pingpong, spawn, timers,
    /// echo).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<Workload>,

    /// Also writes this run's ratios to FILE (the ratios file's format), whatever the
    /// verdict.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,

    /// Kills a run that takes longer than this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

#[derive(Debug, clap::Args)]
pub(super) struct DocsArgs {
    /// Only checks that the table is what the ratios file gives; writes nothing.
    #[arg(long)]
    check: bool,

    /// The ratios file (default: the committed crates/taskscope-bench/ratios.json).
    #[arg(long, value_name = "FILE")]
    ratios: Option<PathBuf>,

    /// The page holding the table (default: this workspace's docs/performance.md).
    #[arg(long, value_name = "FILE")]
    doc: Option<PathBuf>,
}

impl GuardArgs {
    /// The validated plan; `command` is the command line, for the ratios file.
    pub(super) fn plan(self, command: String) -> anyhow::Result<GuardPlan> {
        if self.reps < 3 {
            bail!("--reps must be at least 3: the noise is measured from their spread");
        }
        let measured: Vec<Workload> = CHECKS.iter().map(|c| c.workload).collect();
        if let Some(other) = self.workloads.iter().find(|w| !measured.contains(w)) {
            bail!(
                "the guard does not measure `{other}`; choose from pingpong, spawn, timers, \
                 echo"
            );
        }
        Ok(GuardPlan {
            reps: self.reps,
            bless: self.bless,
            ratios: self.ratios.unwrap_or_else(ratios_file::default_path),
            workloads: super::dedup(self.workloads),
            save: self.save,
            timeout: Duration::from_secs(self.timeout),
            rss_cap_bytes: 4096 * 1024 * 1024,
            command,
        })
    }
}

impl DocsArgs {
    /// The plan, with the committed file and this workspace's page by default.
    pub(super) fn plan(self) -> DocsPlan {
        DocsPlan {
            ratios: self.ratios.unwrap_or_else(ratios_file::default_path),
            doc: self.doc.unwrap_or_else(docs::default_doc),
            check: self.check,
        }
    }
}
