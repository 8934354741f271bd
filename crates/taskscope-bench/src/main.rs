//! `taskscope-bench`: what the taskscope probe costs a tokio app, measured against plain
//! tokio and console-subscriber.
//!
//! Every measurement runs in a fresh child process (this same binary, re-executed as
//! `__run <mode> <workload> <size>`), so each mode's tracing set-up is exactly what an app
//! would have, nothing leaks from one run to the next, and peak memory is the child's own.
//! The parent interleaves the modes run by run, collects wall time, CPU time and peak RSS,
//! and prints medians and ratios to the `none` run of the same repetition.
//!
//! `guard` runs a fixed set of those ratios before a release and compares them with the
//! ones committed in `ratios.json`; `docs` writes that file's table into
//! `docs/performance.md` (see `guard.rs`).

mod builds;
mod child;
mod cli;
mod guard;
mod launch;
mod measure;
mod mode;
mod parent;
mod report;
mod stats;
mod watch;
mod workload;
mod workloads;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(child::SUBCOMMAND) {
        return match child::main(&args[2..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("taskscope-bench child: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match cli::parse().and_then(run) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("taskscope-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Does what the command line asks; the exit code says how it went (`--help`'s EXIT
/// STATUS).
fn run(action: cli::Action) -> anyhow::Result<ExitCode> {
    Ok(match action {
        cli::Action::Bench(plan) => {
            parent::main(plan)?;
            ExitCode::SUCCESS
        }
        cli::Action::Guard(plan) => match guard::main(plan)? {
            guard::GuardOutcome::Passed => ExitCode::SUCCESS,
            guard::GuardOutcome::Worse => ExitCode::from(1),
        },
        cli::Action::Docs(plan) => match guard::docs::main(&plan)? {
            guard::docs::DocsOutcome::Fresh => {
                eprintln!("{} is up to date", plan.doc.display());
                ExitCode::SUCCESS
            }
            guard::docs::DocsOutcome::Written => {
                eprintln!("rewrote the ratios table of {}", plan.doc.display());
                ExitCode::SUCCESS
            }
            guard::docs::DocsOutcome::Stale => ExitCode::from(1),
        },
    })
}
