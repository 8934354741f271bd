//! `taskscope-bench guard`: the release check that no ratio of the probe's cost slipped.
//!
//! It runs a fixed set of ratios ([`checks::CHECKS`]) over many repetitions, each mode
//! next to the mode it is divided by, and compares the medians with the ratios committed
//! in `ratios.json` ([`compare`] has the rule). `--bless` writes that file instead, and
//! `docs` turns it into `docs/performance.md`'s tables ([`docs`]).

pub(crate) mod checks;
pub(crate) mod compare;
pub(crate) mod docs;
pub(crate) mod ratios_file;
mod table;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use crate::builds::Build;
use crate::launch::{self, Job, Run, Status};
use crate::mode::Mode;
use crate::report;
use crate::workload::{Timing, Workload};
use checks::{CHECKS, Check, Group};
use ratios_file::{CheckRecord, RatiosFile};

/// What `guard` was asked to do, validated.
#[derive(Debug, Clone)]
pub(crate) struct GuardPlan {
    pub(crate) reps: u32,
    /// Write the run to `ratios` instead of comparing with it.
    pub(crate) bless: bool,
    pub(crate) ratios: PathBuf,
    /// Only the checks of these workloads (all when empty).
    pub(crate) workloads: Vec<Workload>,
    /// Also write the run's ratios here (same format), whatever the verdict.
    pub(crate) save: Option<PathBuf>,
    pub(crate) timeout: Duration,
    pub(crate) rss_cap_bytes: u64,
    pub(crate) command: String,
}

/// How a guard run ended, when it could judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GuardOutcome {
    /// Nothing guarded got worse (or the baseline was written).
    Passed,
    /// At least one guarded ratio got worse beyond the noise, or has no baseline.
    Worse,
}

/// Runs the checks, then compares with the committed ratios or writes them.
pub(crate) fn main(plan: GuardPlan) -> anyhow::Result<GuardOutcome> {
    // A missing or unreadable baseline is reported before minutes of measuring, not after.
    let baseline = if plan.bless {
        None
    } else {
        Some(RatiosFile::load(&plan.ratios)?)
    };
    let checks: Vec<Check> = CHECKS
        .into_iter()
        .filter(|c| plan.workloads.is_empty() || plan.workloads.contains(&c.workload))
        .collect();
    make_builds(&checks)?;
    let run = measure(&plan, &checks)?;
    if let Some(path) = &plan.save {
        run.save(path)?;
    }
    let Some(baseline) = baseline else {
        run.save(&plan.ratios)?;
        print!("{}", table::recorded(&run));
        println!(
            "\nwrote {}; regenerate the docs' tables with \
             `cargo run --release -p taskscope-bench -- docs`",
            plan.ratios.display()
        );
        return Ok(GuardOutcome::Passed);
    };
    let judgements = compare::judge(&baseline, &run);
    print!("{}", table::judged(&baseline, &run, &judgements));
    Ok(if judgements.iter().any(compare::Judgement::fails) {
        GuardOutcome::Worse
    } else {
        GuardOutcome::Passed
    })
}

/// Brings the other builds of the harness that `checks` run up to date, so that the
/// release check stays one command and never measures a stale build.
fn make_builds(checks: &[Check]) -> anyhow::Result<()> {
    let mut builds: Vec<Build> = Vec::new();
    for check in checks {
        for mode in [check.mode, check.against] {
            if let Some(build) = Build::of(mode)
                && !builds.contains(&build)
            {
                builds.push(build);
            }
        }
    }
    for build in builds {
        build.make()?;
    }
    Ok(())
}

/// Runs every group's warm-up, then every repetition of every group (each mode in turn),
/// and folds the runs into ratios. Repetitions are the outer loop, so that a change in the
/// machine's load over the long run spreads over every ratio rather than skewing a few.
fn measure(plan: &GuardPlan, checks: &[Check]) -> anyhow::Result<RatiosFile> {
    let groups = checks::groups(checks);
    let total =
        groups.len() + groups.iter().map(|g| g.modes.len()).sum::<usize>() * plan.reps as usize;
    let job = |group: &Group, mode: Mode, rep: u32| Job {
        workload: group.workload,
        mode,
        rep,
        size: group.size,
        timing: Timing::full(),
        timeout: plan.timeout,
        rss_cap_bytes: plan.rss_cap_bytes,
    };
    let load_at_start = report::load_average();
    let mut done = 0;
    let mut runs: HashMap<(usize, Mode, u32), Run> = HashMap::new();
    let mut failed = Vec::new();
    for group in &groups {
        done += 1;
        let run = launch::run(job(group, group.modes[0], 0))?;
        progress(done, total, "warm-up", &run);
    }
    let mut load_per_rep = Vec::with_capacity(plan.reps as usize);
    for rep in 1..=plan.reps {
        load_per_rep.push(report::load_average());
        for (index, group) in groups.iter().enumerate() {
            for &mode in &group.modes {
                done += 1;
                let run = launch::run(job(group, mode, rep))?;
                progress(done, total, &format!("rep {rep}/{}", plan.reps), &run);
                if let Status::Failed(why) = &run.status {
                    failed.push(format!("{} {} rep {rep}: {why}", run.workload, run.mode));
                } else if run.status != Status::Ok {
                    failed.push(format!(
                        "{} {} rep {rep}: {:?}",
                        run.workload, run.mode, run.status
                    ));
                }
                runs.insert((index, mode, rep), run);
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} run(s) did not finish, so the ratios cannot be judged; first: {}",
            failed.len(),
            failed[0]
        );
    }
    let records = checks
        .iter()
        .map(|check| {
            let index = groups
                .iter()
                .position(|g| g.workload == check.workload && g.size == check.size())
                .expect("every check has its group");
            let (mut wall, mut cpu) = (Vec::new(), Vec::new());
            for rep in 1..=plan.reps {
                let times = |mode| {
                    let report = runs.get(&(index, mode, rep))?.report.as_ref()?;
                    Some((report.wall_ns as f64, report.cpu_ns as f64))
                };
                if let (Some(mine), Some(theirs)) = (times(check.mode), times(check.against)) {
                    wall.push(mine.0 / theirs.0);
                    cpu.push(mine.1 / theirs.1);
                }
            }
            CheckRecord::new(check, wall, cpu)
        })
        .collect();
    Ok(RatiosFile {
        schema: ratios_file::SCHEMA,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        commit: ratios_file::commit(),
        date: ratios_file::utc_now(),
        command: plan.command.clone(),
        machine: report::machine(load_at_start),
        load_per_rep,
        reps: plan.reps,
        checks: records,
    })
}

fn progress(done: usize, total: usize, which: &str, run: &Run) {
    let what = match (&run.status, &run.report) {
        (Status::Ok, Some(report)) => format!("{:.1} ms", report.wall_ns as f64 / 1e6),
        (Status::Ok, None) => "no result".to_owned(),
        (Status::Timeout, _) => "killed: timeout".to_owned(),
        (Status::RssCap, _) => "killed: RSS cap".to_owned(),
        (Status::Failed(why), _) => format!("FAILED: {why}"),
    };
    eprintln!(
        "[guard {done}/{total}] {which}: {} ({}) {}: {what}",
        run.workload, run.size, run.mode
    );
}
