//! The harness: schedules the runs (warm-up, then every mode in turn per repetition),
//! runs them one at a time, and prints the report.

use std::io::Write;

use anyhow::{Context, bail};

use crate::cli::Plan;
use crate::launch::{self, Job, Run, Status};
use crate::mode::Mode;
use crate::report::{self, Report};
use crate::workload::Workload;

/// Runs the plan and prints its report.
pub(crate) fn main(plan: Plan) -> anyhow::Result<()> {
    let jobs = schedule(&plan);
    let load_at_start = report::load_average();
    let mut runs = Vec::with_capacity(jobs.len());
    for (index, job) in jobs.iter().enumerate() {
        let run = launch::run(*job)?;
        progress(index + 1, jobs.len(), &run);
        runs.push(run);
    }
    let failed: Vec<String> = runs
        .iter()
        .filter_map(|r| match &r.status {
            Status::Failed(why) => Some(format!("{} in {}: {why}", r.workload, r.mode)),
            _ => None,
        })
        .collect();
    let report = Report {
        command: plan.command.clone(),
        machine: report::machine(load_at_start),
        quick: plan.quick,
        repetitions: plan.reps,
        summaries: report::summarize(&plan, &runs),
        runs,
    };
    if let Some(path) = &plan.save {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write the results to {}", path.display()))?;
        serde_json::to_writer_pretty(std::io::BufWriter::new(file), &report)?;
    }
    let mut stdout = std::io::stdout().lock();
    if plan.json {
        serde_json::to_writer_pretty(&mut stdout, &report)?;
        writeln!(stdout)?;
    } else {
        write!(stdout, "{}", report::render(&report))?;
    }
    if !failed.is_empty() {
        bail!(
            "{} run(s) failed (see the table); first: {}",
            failed.len(),
            failed[0]
        );
    }
    Ok(())
}

/// The runs, in order. Per workload: one warm-up run (discarded), then each repetition
/// runs every mode in turn, so that drift of a shared machine hits every mode alike.
/// `stall-latency` needs a probe and pools its figure over its 100 stalls, so it runs once
/// per taskscope mode.
fn schedule(plan: &Plan) -> Vec<Job> {
    let mut jobs = Vec::new();
    for &workload in &plan.workloads {
        let job = |mode, rep| Job {
            workload,
            mode,
            rep,
            size: plan.sizes[&workload],
            timing: plan.timing,
            timeout: plan.timeout,
            rss_cap_bytes: plan.rss_cap_bytes,
        };
        let modes: Vec<Mode> = plan
            .modes
            .iter()
            .copied()
            .filter(|m| !workload.needs_probe() || m.is_taskscope())
            .collect();
        let reps = if workload.needs_probe() { 1 } else { plan.reps };
        if plan.warmup
            && let Some(&first) = modes.first()
            && workload != Workload::StallLatency
        {
            jobs.push(job(first, 0));
        }
        for rep in 1..=reps {
            jobs.extend(modes.iter().map(|&mode| job(mode, rep)));
        }
    }
    jobs
}

fn progress(done: usize, total: usize, run: &Run) {
    let what = match (&run.status, &run.report) {
        (Status::Ok, Some(report)) => format!("{:.1} ms", report.wall_ns as f64 / 1e6),
        (Status::Ok, None) => "no result".to_owned(),
        (Status::Timeout, _) => "killed: timeout".to_owned(),
        (Status::RssCap, _) => "killed: RSS cap".to_owned(),
        (Status::Failed(why), _) => format!("FAILED: {why}"),
    };
    let rep = if run.rep == 0 {
        "warm-up".to_owned()
    } else {
        format!("rep {}", run.rep)
    };
    eprintln!(
        "[{done}/{total}] {} {} {rep}: {what}",
        run.workload, run.mode
    );
}
