//! The judge: from the models of the processes observed to findings, grouped and sorted.
//!
//! Lives with the model because the dashboard flags exactly what `check` fails on. Pure
//! like the model; the reports that print a [`Judgement`] live in `crate::report`.

pub(crate) mod allowance;
#[cfg(test)]
mod deadlock_tests;
pub(crate) mod deadlocks;
pub(crate) mod finding;
pub(crate) mod glob;
pub(crate) mod policy;
pub(crate) mod roots;
pub(crate) mod rules;
pub(crate) mod test_names;

use std::collections::{BTreeSet, HashMap, HashSet};

use self::finding::{Descendant, Detail, Finding};
use self::policy::{FindingKind, Policy, Severity};
use self::rules::Occurrence;
use super::stall::{HeldBy, Stall};
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
    /// What the probe could see there.
    pub(crate) capability: taskscope_api::v1::Capability,
}

/// What the judge concluded.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Judgement {
    /// Worst first.
    pub(crate) findings: Vec<Finding>,
    /// Findings an allowance accepted (so dropped).
    pub(crate) allowed: u64,
    /// Allowances that accepted nothing: stale once what they named was fixed.
    pub(crate) unused_allowances: Vec<UnusedAllowance>,
    /// Whether those fail the check (`--fail-on-unused-allow`).
    pub(crate) unused_allowances_fail: bool,
    pub(crate) processes: Vec<ProcessRef>,
    pub(crate) summary: Summary,
    /// Things that limit what the findings can say (a cut recording, waker tracking off).
    pub(crate) notes: Vec<String>,
}

/// An allowance that matched no finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UnusedAllowance {
    /// Its canonical form, `KIND@SITE[#TEST]`.
    pub(crate) allowance: String,
    /// Where it was written.
    pub(crate) origin: String,
    pub(crate) reason: Option<String>,
}

impl UnusedAllowance {
    /// One line for people.
    pub(crate) fn describe(&self) -> String {
        format!(
            "the allowance `{}` ({}) matched nothing: remove it if what it accepted is fixed",
            self.allowance, self.origin
        )
    }
}

impl Judgement {
    pub(crate) fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
            || (self.unused_allowances_fail && !self.unused_allowances.is_empty())
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
            capability: model.capability(),
        });
        add_summary(&mut judgement.summary, model);
        judgement.notes.extend(notes(model, policy));
        let found = roots::fold(model, rules::occurrences(model, policy));
        judgement.notes.extend(without_await_chains(model, &found));
        occurrences.extend(found);
    }
    let screened = allowance::screen(occurrences, policy.allowances());
    judgement.allowed = screened
        .accepted
        .iter()
        .map(|o| (o.kind, o.spawn_location.as_str()))
        .collect::<HashSet<_>>()
        .len() as u64;
    judgement.findings = group(screened.kept, policy);
    judgement.unused_allowances = policy
        .allowances()
        .iter()
        .zip(&screened.used)
        .filter(|(_, used)| !**used)
        .map(|(allowance, _)| UnusedAllowance {
            allowance: allowance.to_string(),
            origin: allowance.origin.clone(),
            reason: allowance.reason.clone(),
        })
        .collect();
    judgement.unused_allowances_fail = policy.fail_on_unused_allowance;
    judgement
}

fn add_summary(summary: &mut Summary, model: &Model) {
    // Counted by site by the probe: every one of them completed.
    let folded = model.folded_tasks();
    summary.tasks = summary.tasks.saturating_add(folded);
    summary.completed = summary.completed.saturating_add(folded);
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

/// What a process built without `--cfg tokio_unstable` was judged on, and what the cfg
/// adds (docs/guide.md, "What each build sees").
pub(crate) const WORKERS_ONLY: &str = "built without `--cfg tokio_unstable`: judged on its \
     runtime workers (a worker blocked in a call or computing in one poll past the \
     threshold is a stall, with its stack) and on tokio's count of the tasks alive at \
     shutdown; no task is seen, so no spawn location, no panic or lost waker by task. Build \
     with RUSTFLAGS=\"--cfg tokio_unstable\" to see every task";

/// What the reader of the findings must know about how far they go, in the order printed.
fn notes(model: &Model, policy: &Policy) -> Vec<String> {
    let who = format!("{} (pid {})", display_program(model.program()), model.pid());
    let mut notes = Vec::new();
    visibility_notes(model, &who, &mut notes);
    measurement_notes(model, policy, &who, &mut notes);
    notes
}

/// What this process's recording could not see: a cut recording, no instrumentation, a
/// console-subscriber target, a body started before the probe, no waker tracking, no
/// holders of locks.
fn visibility_notes(model: &Model, who: &str, notes: &mut Vec<String>) {
    if model.ending() == Ending::Cut {
        notes.push(format!(
            "{who}: the recording was cut (the process was killed or the connection lost); \
             judged on what it holds"
        ));
    }
    if model.sees_workers_only() {
        notes.push(format!("{who}: {WORKERS_ONLY}"));
    } else if model.instrumentation() == Instrumentation::Missing {
        notes.push(format!(
            "{who}: built without `--cfg tokio_unstable`, so tokio reported no tasks; \
             build with RUSTFLAGS=\"--cfg tokio_unstable\""
        ));
    }
    if model.instrumentation() == Instrumentation::Filtered {
        notes.push(format!("{who}: {}", super::FILTERED_FIX));
    }
    if model.is_console_target() {
        notes.push(format!(
            "{who}: read through tokio-console's protocol (console-subscriber): stalls are \
             seen at its publish interval (1 s by default), so shorter ones may be missed and \
             durations are rounded to it; stall stacks, task outcomes, parents and threads \
             are not available from a console-subscriber target"
        ));
    }
    if let Some(at) = model
        .process()
        .map(|p| p.unobserved_body.as_str())
        .filter(|at| !at.is_empty())
    {
        notes.push(format!(
            "{who}: taskscope::init() was called at {at}, inside a runtime tokio was already \
             running, from where the probe cannot watch the body that called it, so a stall \
             in that body itself is not seen; #[taskscope::main] (or #[taskscope::test]) in \
             place of tokio's macro sees it"
        ));
    }
    if let Some(process) = model.process()
        && !model.waker_tracking()
        && !model.sees_workers_only()
    {
        let how = if process.route == taskscope_api::v1::Route::Hooks as i32 {
            "the hooks route (#[taskscope::main], #[taskscope::test]) does not see wakers; \
             TASKSCOPE_ROUTE=tracing does, with the probe as the global tracing subscriber"
        } else {
            "waker tracking was off (TASKSCOPE_WAKERS=on turns it on)"
        };
        notes.push(format!(
            "{who}: {how}, so lost wakers could not be told apart from tasks alive at shutdown"
        ));
    }
    if let Some(why) = model.holders_unavailable() {
        notes.push(format!(
            "{who}: {why}; without holders, only deadlocks of tasks joined through \
             taskscope::join are found"
        ));
    }
}

/// What the measurements leave out: polls under the probe's own threshold, polls held by
/// an overloaded machine, events the probe dropped.
fn measurement_notes(model: &Model, policy: &Policy, who: &str, notes: &mut Vec<String>) {
    let probe_threshold = model.process().map_or(0, |p| p.stall_threshold_ns);
    if probe_threshold > policy.stall_threshold_ns {
        notes.push(format!(
            "{who}: the probe only reported polls longer than {}, so shorter stalls are unknown",
            human_ns(probe_threshold)
        ));
    }
    let held = |by: HeldBy| -> Vec<&Stall> {
        model
            .stalls()
            .filter(|s| s.duration_ns >= policy.stall_threshold_ns)
            .filter(|s| s.held_by(policy.stall_threshold_ns) == by)
            .collect()
    };
    // What the longest of them ran: the app's code and the probe's.
    let split = |stalls: &[&Stall]| {
        let longest = stalls.iter().max_by_key(|s| s.duration_ns)?;
        Some(format!(
            "the longest {}, of which the app's code ran {} and the probe's {}",
            human_ns(longest.duration_ns),
            human_ns(longest.app_ns()),
            human_ns(longest.probe_cpu_ns())
        ))
    };
    let machine = held(HeldBy::Machine);
    if let Some(longest) = split(&machine) {
        notes.push(format!(
            "{who}: {} poll(s) held a thread past the threshold ({longest}) only because the \
             thread was waiting for a CPU, not running: an overloaded machine's doing, not \
             the code's; not judged as stalls",
            machine.len(),
        ));
    }
    let probe = held(HeldBy::Probe);
    if let Some(longest) = split(&probe) {
        notes.push(format!(
            "{who}: {} poll(s) passed the threshold ({longest}) only with the probe's own \
             time in them (its hooks, one per task a poll spawns, and the slowdown they \
             cause the app's code around them), which is not the app's; not judged as \
             stalls. In a debug build, `[profile.dev.package.taskscope] opt-level = 3` \
             makes that time about 5 times smaller (docs/performance.md)",
            probe.len(),
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
    if drops.wait_events > 0 {
        notes.push(format!(
            "{who}: the probe dropped {} facts about locks, permits and joins (a full queue, \
             or more resources alive than it tracks); the wait-for graph may miss an edge, so \
             a deadlock may be missed",
            drops.wait_events
        ));
    }
}

fn display_program(program: &str) -> &str {
    if program.is_empty() {
        "process"
    } else {
        program.rsplit('/').next().unwrap_or(program)
    }
}

/// Groups occurrences by (kind, spawn location) with the worst as example (the tasks
/// folded into a group's leaks added up), and sorts: errors first, then the biggest
/// groups, then the worst example.
fn group(mut occurrences: Vec<Occurrence>, policy: &Policy) -> Vec<Finding> {
    // Deterministic examples whatever the hash order the models iterate in.
    occurrences.sort_by_key(|o| (o.pid, o.task_id));
    let mut groups: HashMap<(FindingKind, String), Group> = HashMap::new();
    for occurrence in occurrences {
        let key = (occurrence.kind, occurrence.spawn_location.clone());
        match groups.get_mut(&key) {
            Some(group) => group.add(occurrence),
            None => {
                groups.insert(key, Group::new(occurrence));
            }
        }
    }
    let mut findings: Vec<(Finding, u64)> = groups
        .into_values()
        .map(|group| {
            let weight = group.worst.weight;
            (group.finding(policy), weight)
        })
        .collect();
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
    findings.into_iter().map(|(finding, _)| finding).collect()
}

/// The occurrences of one kind at one spawn site.
struct Group {
    worst: Occurrence,
    count: u64,
    /// Leaked tasks folded into the group's leaks, by site.
    descendants: HashMap<String, u64>,
    /// The tests the occurrences belong to.
    tests: BTreeSet<String>,
}

impl Group {
    fn new(occurrence: Occurrence) -> Self {
        let mut group = Self {
            descendants: HashMap::new(),
            tests: BTreeSet::new(),
            count: 0,
            worst: occurrence.clone(),
        };
        group.add(occurrence);
        group
    }

    fn add(&mut self, occurrence: Occurrence) {
        self.count += 1;
        if let Some(test) = &occurrence.test {
            self.tests.insert(test.clone());
        }
        if let Detail::AliveAtShutdown { descendants } = &occurrence.detail {
            for descendant in descendants {
                *self
                    .descendants
                    .entry(descendant.spawn_location.clone())
                    .or_default() += descendant.count;
            }
        }
        if occurrence.weight > self.worst.weight {
            self.worst = occurrence;
        }
    }

    fn finding(self, policy: &Policy) -> Finding {
        let worst = self.worst;
        let mut message = worst.message;
        if self.count > 1 {
            message = format!(
                "{} times from this spawn site{}; worst: {message}",
                self.count,
                in_tests(&self.tests)
            );
        }
        let mut detail = worst.detail;
        if let Detail::AliveAtShutdown { descendants } = &mut detail {
            *descendants = roots::by_site(
                self.descendants
                    .iter()
                    .map(|(site, &count)| (site.as_str(), count))
                    .collect(),
            );
            if let Some(folded) = describe_descendants(descendants, self.count) {
                message.push('\n');
                message.push_str(&folded);
            }
        }
        Finding {
            kind: worst.kind,
            severity: policy.severity(worst.kind),
            count: self.count,
            spawn_location: worst.spawn_location,
            task_id: worst.task_id,
            task_name: worst.task_name,
            message,
            pid: worst.pid,
            program: worst.program,
            test: worst.test,
            waiting_at: worst.waiting_at,
            detail,
        }
    }
}

/// Why leaked tasks have no `waiting_at`, when some have none: one note for the tasks the
/// latest dump reached and found parked on nothing tokio's trace marks, one for the tasks
/// no dump reached at all. (A task that is itself the future it waits on, a spawned
/// `sleep`, has a chain with nothing of the user's in it: its spawn line is where it
/// waits, and no note is needed.)
fn without_await_chains(model: &Model, found: &[rules::Occurrence]) -> Vec<String> {
    if model.sees_workers_only() {
        return Vec::new(); // no task, no chain: said once by the capability's note
    }
    let (mut without_leaf, mut unreached) = (0, 0);
    for occurrence in found.iter().filter(|o| {
        matches!(
            o.kind,
            FindingKind::AliveAtShutdown | FindingKind::LostWaker
        )
    }) {
        match model.waiting().of(occurrence.task_id) {
            Some(chain) if chain.leaves.is_empty() => without_leaf += 1,
            Some(_) => {}
            None => unreached += 1,
        }
    }
    let Some(process) = model.process() else {
        return Vec::new();
    };
    let who = format!("{} (pid {})", display_program(model.program()), model.pid());
    let mut notes = Vec::new();
    if without_leaf > 0 {
        notes.push(format!(
            "{who}: {without_leaf} leaked task(s) have no await chain (where they waited): \
             the dump reached them but found them {}",
            crate::model::waiting::NO_TOKIO_LEAF
        ));
    }
    if unreached > 0 {
        let why = if !process.dumps_unavailable.is_empty() {
            process.dumps_unavailable.clone()
        } else if let Some(latest) = model.waiting().latest() {
            match &latest.skipped {
                Some(skipped) => format!(
                    "the dump {} was skipped: {skipped}",
                    latest.trigger.as_str()
                ),
                None => "no dump reached them: tasks of a LocalSet, and tasks spawned after \
                         the last dump, are in none"
                    .to_owned(),
            }
        } else if process.route == taskscope_api::v1::Route::Hooks as i32 {
            "no dump was taken: only runtimes started by #[taskscope::main] or \
             #[taskscope::test] are dumped before they shut down"
                .to_owned()
        } else {
            "no dump was taken: with taskscope::init(), dumps are taken when tasks go idle, \
             and these never did long enough"
                .to_owned()
        };
        notes.push(format!(
            "{who}: {unreached} leaked task(s) have no await chain (where they waited): {why}"
        ));
    }
    notes
}

/// How many tests a grouped finding names.
const TESTS_NAMED: usize = 3;

/// ` in 4 tests (a, b, c and 1 more)`, when a group spans several tests.
fn in_tests(tests: &BTreeSet<String>) -> String {
    if tests.len() < 2 {
        return String::new();
    }
    let named: Vec<&str> = tests.iter().take(TESTS_NAMED).map(String::as_str).collect();
    let list = match tests.len().checked_sub(TESTS_NAMED) {
        Some(more) if more > 0 => format!("{} and {more} more", named.join(", ")),
        _ => {
            let (last, rest) = named.split_last().expect("two tests or more");
            format!("{} and {last}", rest.join(", "))
        }
    };
    format!(" in {} tests ({list})", tests.len())
}

/// How many sites of folded tasks a message names; the JSON lists them all.
const SITES_NAMED: usize = 5;

/// `and 37 tasks it spawned, still alive: src/server.rs:259:9 ×18, src/db.rs:135:5 ×14`.
fn describe_descendants(descendants: &[Descendant], leaks: u64) -> Option<String> {
    let total: u64 = descendants.iter().map(|d| d.count).sum();
    if total == 0 {
        return None;
    }
    let who = if leaks > 1 { "they" } else { "it" };
    let tasks = if total == 1 { "task" } else { "tasks" };
    let mut sites: Vec<String> = descendants
        .iter()
        .take(SITES_NAMED)
        .map(|d| format!("{} ×{}", d.spawn_location, d.count))
        .collect();
    if descendants.len() > SITES_NAMED {
        sites.push(format!(
            "and {} more sites",
            descendants.len() - SITES_NAMED
        ));
    }
    Some(format!(
        "and {total} {tasks} {who} spawned, still alive: {}",
        sites.join(", ")
    ))
}

#[cfg(test)]
mod tests;
