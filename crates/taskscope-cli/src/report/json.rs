//! The `taskscope.check/v1` JSON document: a stable contract for scripts (docs/ci.md).
//! Fields are only ever added; a change of meaning gets a new schema name.

use serde::Serialize;

use super::{ChildExit, Report};
use crate::model::judge::finding::{Detail, Finding};

/// The schema name every document carries.
pub(crate) const SCHEMA: &str = "taskscope.check/v1";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    verdict: &'static str,
    command: Option<&'a [String]>,
    exit_code: Option<i32>,
    stall_threshold_ms: f64,
    processes: Vec<Process<'a>>,
    summary: Summary,
    findings: Vec<JsonFinding<'a>>,
    /// Allowances that accepted nothing.
    unused_allowances: Vec<UnusedAllowance<'a>>,
}

#[derive(Serialize)]
struct UnusedAllowance<'a> {
    allowance: &'a str,
    origin: &'a str,
    reason: Option<&'a str>,
    severity: &'static str,
}

#[derive(Serialize)]
struct Process<'a> {
    pid: u32,
    program: &'a str,
    /// What the probe could see: `workers` (built without `--cfg tokio_unstable`),
    /// `tasks`, `tasks_and_wakers`, `none`, or `unknown` (docs/ci.md).
    capability: &'static str,
}

#[derive(Serialize)]
struct Summary {
    tasks: u64,
    completed: u64,
    cancelled: u64,
    panicked: u64,
    findings: usize,
    /// Findings an allowance accepted.
    allowed: u64,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    kind: &'static str,
    severity: &'static str,
    count: u64,
    spawn_location: &'a str,
    task: Task<'a>,
    message: &'a str,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backtrace: Option<Vec<Frame<'a>>>,
    /// The stall's timeline file (`check --trace-dir`), when one was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    panic_message: Option<&'a str>,
    /// Milliseconds the panic hooks held the thread (printing it, a backtrace).
    #[serde(skip_serializing_if = "Option::is_none")]
    panic_held_ms: Option<f64>,
    /// Leaked tasks folded into this leak, by spawn site.
    #[serde(skip_serializing_if = "Option::is_none")]
    descendants: Option<Vec<Descendant<'a>>>,
    /// Where a leaked or lost task was parked, innermost frame first.
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_at: Option<Vec<Frame<'a>>>,
    /// Every task of a deadlock's cycle, each waiting for the next.
    #[serde(skip_serializing_if = "Option::is_none")]
    cycle: Option<Vec<CycleTask<'a>>>,
}

#[derive(Serialize)]
struct CycleTask<'a> {
    task: Task<'a>,
    spawn_location: &'a str,
    /// The `.await` in the user's code it waits at; null when no dump reached it.
    await_location: Option<&'a str>,
    /// What it waits on, for people.
    waits_on: &'a str,
    /// The next task of the cycle, which holds what it waits on or is the task it joins.
    waits_for: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    waiting_at: Vec<Frame<'a>>,
}

#[derive(Serialize)]
struct Descendant<'a> {
    spawn_location: &'a str,
    count: u64,
}

#[derive(Serialize)]
struct Task<'a> {
    id: u64,
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct Frame<'a> {
    function: &'a str,
    location: Option<&'a str>,
}

/// The JSON word for what a probe could see.
fn capability_name(capability: taskscope_api::v1::Capability) -> &'static str {
    use taskscope_api::v1::Capability;
    match capability {
        Capability::Unknown => "unknown",
        Capability::None => "none",
        Capability::Workers => "workers",
        Capability::Tasks => "tasks",
        Capability::TasksAndWakers => "tasks_and_wakers",
    }
}

/// The document, pretty-printed, with a final newline.
pub(crate) fn render(report: &Report<'_>) -> String {
    let judgement = report.judgement;
    let document = Document {
        schema: SCHEMA,
        verdict: report.verdict().as_str(),
        command: report.command,
        exit_code: match report.exit {
            Some(ChildExit::Code(code)) => Some(code),
            Some(ChildExit::Signal(_)) | None => None,
        },
        stall_threshold_ms: report.stall_threshold_ns as f64 / 1e6,
        processes: judgement
            .processes
            .iter()
            .map(|p| Process {
                pid: p.pid,
                program: &p.program,
                capability: capability_name(p.capability),
            })
            .collect(),
        summary: Summary {
            tasks: judgement.summary.tasks,
            completed: judgement.summary.completed,
            cancelled: judgement.summary.cancelled,
            panicked: judgement.summary.panicked,
            findings: judgement.findings.len(),
            allowed: judgement.allowed,
        },
        findings: judgement.findings.iter().map(finding).collect(),
        unused_allowances: judgement
            .unused_allowances
            .iter()
            .map(|unused| UnusedAllowance {
                allowance: &unused.allowance,
                origin: &unused.origin,
                reason: unused.reason.as_deref(),
                severity: if judgement.unused_allowances_fail {
                    "error"
                } else {
                    "note"
                },
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&document).expect("plain data always serializes");
    text.push('\n');
    text
}

fn frames(frames: &[crate::model::stall::Frame]) -> Vec<Frame<'_>> {
    frames
        .iter()
        .map(|frame| Frame {
            function: &frame.function,
            location: frame.location.as_deref(),
        })
        .collect()
}

fn finding(finding: &Finding) -> JsonFinding<'_> {
    let mut json = JsonFinding {
        kind: finding.kind.as_str(),
        severity: finding.severity.as_str(),
        count: finding.count,
        spawn_location: &finding.spawn_location,
        task: Task {
            id: finding.task_id,
            name: finding.task_name.as_deref(),
        },
        message: &finding.message,
        pid: finding.pid,
        duration_ms: None,
        thread: None,
        backtrace: None,
        trace: None,
        test: finding.test.as_deref(),
        panic_message: None,
        panic_held_ms: None,
        descendants: None,
        waiting_at: (!finding.waiting_at.is_empty()).then(|| frames(&finding.waiting_at)),
        cycle: None,
    };
    match &finding.detail {
        Detail::Stall {
            duration_ns,
            thread,
            backtrace,
            trace,
            ..
        } => {
            json.duration_ms = Some(*duration_ns as f64 / 1e6);
            json.thread = Some(thread);
            json.backtrace = Some(frames(backtrace));
            json.trace = trace.as_ref().map(|p| p.display().to_string());
        }
        Detail::AliveAtShutdown { descendants } => {
            json.descendants = Some(
                descendants
                    .iter()
                    .map(|d| Descendant {
                        spawn_location: &d.spawn_location,
                        count: d.count,
                    })
                    .collect(),
            );
        }
        Detail::Panic {
            message, held_ns, ..
        } => {
            json.panic_message = Some(message);
            json.panic_held_ms = (*held_ns > 0).then(|| *held_ns as f64 / 1e6);
        }
        Detail::Deadlock { tasks } => {
            json.cycle = Some(
                tasks
                    .iter()
                    .map(|t| CycleTask {
                        task: Task {
                            id: t.task_id,
                            name: t.task_name.as_deref(),
                        },
                        spawn_location: &t.spawn_location,
                        await_location: t.await_location(),
                        waits_on: &t.waits_on,
                        waits_for: t.waits_for,
                        waiting_at: frames(&t.waiting_at),
                    })
                    .collect(),
            );
        }
        Detail::LostWaker | Detail::Growth { .. } => {}
    }
    json
}
