//! The judge: from the models of the processes observed to findings, grouped and sorted.
//!
//! Lives with the model because the dashboard flags exactly what `check` fails on. Pure
//! like the model; the reports that print a [`Judgement`] live in `crate::report`.

pub(crate) mod finding;
pub(crate) mod glob;
pub(crate) mod policy;
pub(crate) mod rules;

use std::collections::HashMap;

use self::finding::Finding;
use self::policy::{FindingKind, Policy, Severity};
use self::rules::Occurrence;
use super::task::Outcome;
use super::{Ending, Instrumentation, Model};
use crate::duration::human_ns;

/// Tasks seen and how they ended, over every process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) tasks: u64,
    pub(crate) completed: u64,
    /// Cancelled in any way, including at runtime shutdown.
    pub(crate) cancelled: u64,
    pub(crate) panicked: u64,
}

/// A process that was observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProcessRef {
    pub(crate) pid: u32,
    pub(crate) program: String,
}

/// What the judge concluded.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Judgement {
    /// Worst first.
    pub(crate) findings: Vec<Finding>,
    /// Findings dropped because `--allow` matched their spawn location.
    pub(crate) allowed: u64,
    pub(crate) processes: Vec<ProcessRef>,
    pub(crate) summary: Summary,
    /// Things that limit what the findings can say (a cut recording, waker tracking off).
    pub(crate) notes: Vec<String>,
}

impl Judgement {
    pub(crate) fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    pub(crate) fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// Judges every process observed.
pub(crate) fn judge<'a>(models: impl IntoIterator<Item = &'a Model>, policy: &Policy) -> Judgement {
    let mut judgement = Judgement::default();
    let mut occurrences = Vec::new();
    for model in models {
        judgement.processes.push(ProcessRef {
            pid: model.pid(),
            program: model.program().to_owned(),
        });
        add_summary(&mut judgement.summary, model);
        judgement.notes.extend(notes(model, policy));
        occurrences.extend(rules::occurrences(model, policy));
    }
    let (findings, allowed) = group(occurrences, policy);
    judgement.findings = findings;
    judgement.allowed = allowed;
    judgement
}

fn add_summary(summary: &mut Summary, model: &Model) {
    for task in model.tasks() {
        summary.tasks += 1;
        match task.outcome() {
            Some(Outcome::Completed) => summary.completed += 1,
            Some(Outcome::Cancelled | Outcome::CancelledAtShutdown) => summary.cancelled += 1,
            Some(Outcome::Panicked { .. }) => summary.panicked += 1,
            Some(Outcome::Unknown) | None => {}
        }
    }
}

fn notes(model: &Model, policy: &Policy) -> Vec<String> {
    let who = format!("{} (pid {})", display_program(model.program()), model.pid());
    let mut notes = Vec::new();
    if model.ending() == Ending::Cut {
        notes.push(format!(
            "{who}: the recording was cut (the process was killed or the connection lost); \
             judged on what it holds"
        ));
    }
    if model.instrumentation() == Instrumentation::Missing {
        notes.push(format!(
            "{who}: built without `--cfg tokio_unstable`, so tokio reported no tasks; \
             build with RUSTFLAGS=\"--cfg tokio_unstable\""
        ));
    }
    if model.is_console_target() {
        notes.push(format!(
            "{who}: read through tokio-console's protocol (console-subscriber): stalls are \
             seen at its publish interval (1 s by default), so shorter ones may be missed and \
             durations are rounded to it; stall stacks, task outcomes, parents and threads \
             are not available from a console-subscriber target"
        ));
    }
    if let Some(process) = model.process()
        && !model.waker_tracking()
    {
        let how = if process.route == taskscope_api::v1::Route::Hooks as i32 {
            "the hooks route (#[taskscope::main], #[taskscope::test]) does not see wakers; \
             TASKSCOPE_ROUTE=tracing does, with the probe as the global tracing subscriber"
        } else {
            "waker tracking was off (TASKSCOPE_WAKERS=on)"
        };
        notes.push(format!(
            "{who}: {how}, so lost wakers could not be told apart from tasks alive at shutdown"
        ));
    }
    let probe_threshold = model.process().map_or(0, |p| p.stall_threshold_ns);
    if probe_threshold > policy.stall_threshold_ns {
        notes.push(format!(
            "{who}: the probe only reported polls longer than {}, so shorter stalls are unknown",
            human_ns(probe_threshold)
        ));
    }
    let drops = model.drops();
    if drops.tasks_lost > 0 || drops.stall_events > 0 || drops.recording_updates > 0 {
        notes.push(format!(
            "{who}: the probe dropped events ({} tasks, {} stall facts, {} recording updates); \
             findings may be incomplete",
            drops.tasks_lost, drops.stall_events, drops.recording_updates
        ));
    }
    notes
}

fn display_program(program: &str) -> &str {
    if program.is_empty() {
        "process"
    } else {
        program.rsplit('/').next().unwrap_or(program)
    }
}

/// Groups occurrences by (kind, spawn location) with the worst as example, drops the
/// allowed ones, and sorts: errors first, then the biggest groups, then the worst example.
fn group(mut occurrences: Vec<Occurrence>, policy: &Policy) -> (Vec<Finding>, u64) {
    // Deterministic examples whatever the hash order the models iterate in.
    occurrences.sort_by_key(|o| (o.pid, o.task_id));
    let mut groups: HashMap<(FindingKind, String), (Occurrence, u64)> = HashMap::new();
    for occurrence in occurrences {
        let key = (occurrence.kind, occurrence.spawn_location.clone());
        match groups.get_mut(&key) {
            Some((worst, count)) => {
                *count += 1;
                if occurrence.weight > worst.weight {
                    *worst = occurrence;
                }
            }
            None => {
                groups.insert(key, (occurrence, 1));
            }
        }
    }
    let mut allowed = 0;
    let mut findings: Vec<(Finding, u64)> = Vec::new();
    for (worst, count) in groups.into_values() {
        if policy.is_allowed(&worst.spawn_location) {
            allowed += 1;
            continue;
        }
        let mut message = worst.message;
        if count > 1 {
            message = format!("{count} times from this spawn site; worst: {message}");
        }
        findings.push((
            Finding {
                kind: worst.kind,
                severity: policy.severity(worst.kind),
                count,
                spawn_location: worst.spawn_location,
                task_id: worst.task_id,
                task_name: worst.task_name,
                message,
                pid: worst.pid,
                program: worst.program,
                detail: worst.detail,
            },
            worst.weight,
        ));
    }
    findings.sort_by(|(a, a_weight), (b, b_weight)| {
        (
            a.severity,
            std::cmp::Reverse(a.count),
            a.kind,
            std::cmp::Reverse(*a_weight),
            &a.spawn_location,
        )
            .cmp(&(
                b.severity,
                std::cmp::Reverse(b.count),
                b.kind,
                std::cmp::Reverse(*b_weight),
                &b.spawn_location,
            ))
    });
    (
        findings.into_iter().map(|(finding, _)| finding).collect(),
        allowed,
    )
}

#[cfg(test)]
mod tests;
