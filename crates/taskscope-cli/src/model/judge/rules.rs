//! The rules: which facts in one process's model are problems. Each rule yields
//! occurrences; grouping them into findings is [`super::group`]'s job.

use std::collections::HashMap;

use crate::duration::human_ns;
use crate::model::growth::kept_rising;
use crate::model::stall::{Activity, Frame, HeldBy, shown_frames};
use crate::model::task::{Kind, Outcome, State, Task};
use crate::model::{Ending, LocationId, Model};

use super::finding::Detail;
use super::policy::{FindingKind, Policy};
use super::test_names::TestNames;

/// A task idle with no waker for less than this may just be between a `wake()` that
/// consumed its waker and the next stats update; live lost-waker reports wait this long.
const LOST_WAKER_GRACE_NS: u64 = 1_000_000_000;

/// The stalled thread's name where the target cannot say it.
const CONSOLE_THREAD: &str = "not available from a console-subscriber target";

/// One occurrence of a problem, before grouping.
#[derive(Clone, Debug)]
pub(crate) struct Occurrence {
    pub(crate) kind: FindingKind,
    pub(crate) spawn_location: String,
    pub(crate) task_id: u64,
    pub(crate) task_name: Option<String>,
    pub(crate) message: String,
    pub(crate) pid: u32,
    pub(crate) program: String,
    /// Bigger is worse; the worst occurrence of a group is its example.
    pub(crate) weight: u64,
    /// The libtest test its task belongs to, when known.
    pub(crate) test: Option<String>,
    /// Where the task was parked (its await chain's shown frames, innermost first), for
    /// leaks and lost wakers; empty when no dump reached it.
    pub(crate) waiting_at: Vec<Frame>,
    pub(crate) detail: Detail,
}

/// Every problem in `model`.
pub(crate) fn occurrences(model: &Model, policy: &Policy) -> Vec<Occurrence> {
    let mut found = Vec::new();
    // Built once: asked for every leaked task, which may be most of 100k.
    let mut tests = TestNames::new(model);
    stalls(model, policy, &mut found);
    ended_tasks(model, &mut tests, &mut found);
    live_tasks(model, &mut tests, &mut found);
    counted_at_shutdown(model, &mut found);
    if policy.growth {
        growth(model, &mut found);
    }
    super::deadlocks::find(model, policy, &mut found);
    // Leaks were given their test (or found to have none) on the way.
    for occurrence in found
        .iter_mut()
        .filter(|o| o.test.is_none() && o.kind != FindingKind::AliveAtShutdown)
    {
        occurrence.test = model
            .task(occurrence.task_id)
            .and_then(|task| tests.of(task));
    }
    found
}

fn occurrence(
    model: &Model,
    kind: FindingKind,
    task: Option<&Task>,
    message: String,
    detail: Detail,
) -> Occurrence {
    Occurrence {
        kind,
        spawn_location: task
            .map_or(crate::model::UNKNOWN_LOCATION, |t| {
                model.location(t.location)
            })
            .to_owned(),
        task_id: task.map_or(0, |t| t.id),
        task_name: task.and_then(|t| t.name.as_deref()).map(str::to_owned),
        message,
        pid: model.pid(),
        program: model.program().to_owned(),
        weight: 0,
        test: None,
        waiting_at: match (kind, task) {
            (FindingKind::AliveAtShutdown | FindingKind::LostWaker, Some(task)) => model
                .waiting()
                .of(task.id)
                .map(|chain| chain.shown_frames())
                .unwrap_or_default(),
            _ => Vec::new(),
        },
        detail,
    }
}

fn stalls(model: &Model, policy: &Policy, found: &mut Vec<Occurrence>) {
    for stall in model.stalls() {
        let task = model.task(stall.task_id);
        // spawn_blocking exists to block; the probe should not report those, but a stall
        // of one is never the user's mistake.
        if task.is_some_and(|t| t.kind == Kind::Blocking) {
            continue;
        }
        let duration_ns = stall.duration_at(model.now_ns());
        if duration_ns < policy.stall_threshold_ns
            || stall.held_by(policy.stall_threshold_ns) != HeldBy::App
        {
            continue;
        }
        let (thread, blocked) = if model.is_console_target() {
            // console-api does not say which thread polls a task.
            (CONSOLE_THREAD.to_owned(), "its worker thread".to_owned())
        } else {
            let thread = model.runtime().thread_name(stall.thread);
            let blocked = format!("thread `{thread}`");
            (thread, blocked)
        };
        let backtrace = shown_frames(&stall.stack);
        let whose = if model.sees_workers_only() {
            // The stall stands in for a task the probe cannot name.
            "a task".to_owned()
        } else {
            format!("a poll of {}", describe(stall.task_id, task))
        };
        let mut message = format!(
            "{whose} blocked {blocked} for {} (threshold {})",
            human_ns(duration_ns),
            human_ns(policy.stall_threshold_ns),
        );
        if stall.phase == crate::model::stall::Phase::Ongoing {
            message.push_str(", and was still running when observation stopped");
        }
        if model.sees_workers_only()
            && let Some(at) = crate::model::stall::blocking_line(&backtrace)
        {
            message.push_str(&format!(" at {at}"));
        }
        match (stall.activity, backtrace.first()) {
            (Activity::Busy, _) => message.push_str("; busy computing, never reaching an `.await`"),
            (Activity::Blocked, Some(call)) => {
                message.push_str(&format!("; blocked in `{}`", call.function));
            }
            // Without the probe's reading of the samples, the innermost frame of all says
            // most about where the thread was (e.g. `std::thread::sleep`).
            _ => {
                if let Some(innermost) = stall.stack.first() {
                    message.push_str(&format!("; innermost frame `{}`", innermost.function));
                }
            }
        }
        let mut occurrence = occurrence(
            model,
            FindingKind::Stall,
            task,
            message,
            Detail::Stall {
                stall_id: stall.stall_id,
                duration_ns,
                thread,
                backtrace,
                trace: None,
            },
        );
        occurrence.task_id = stall.task_id;
        occurrence.weight = duration_ns;
        found.push(occurrence);
    }
}

/// A panic hook quicker than this (printing a message, no backtrace) goes unmentioned.
const PANIC_HOLD_WORTH_SAYING_NS: u64 = 10_000_000;

/// Tasks that ended badly: panics, and tasks cut down by their runtime's shutdown.
fn ended_tasks(model: &Model, tests: &mut TestNames<'_>, found: &mut Vec<Occurrence>) {
    for task in model.tasks() {
        match task.outcome() {
            Some(Outcome::Panicked {
                message,
                location,
                held_ns,
            }) if task.kind != Kind::BlockOn => {
                let at = location
                    .as_deref()
                    .map(|l| format!(" at {l}"))
                    .unwrap_or_default();
                let mut text = format!("{} panicked{at}: {message}", describe(task.id, Some(task)));
                if *held_ns >= PANIC_HOLD_WORTH_SAYING_NS {
                    text.push_str(&format!(
                        "; the panic held its thread for {} (the panic hook printing it, \
                         with a backtrace under RUST_BACKTRACE), which is not a stall",
                        crate::duration::human_ns(*held_ns)
                    ));
                }
                found.push(occurrence(
                    model,
                    FindingKind::Panic,
                    Some(task),
                    text,
                    Detail::Panic {
                        message: message.to_string(),
                        location: location.as_deref().map(str::to_owned),
                        held_ns: *held_ns,
                    },
                ));
            }
            Some(Outcome::CancelledAtShutdown) if can_leak(task) => {
                found.push(pending_at_end(model, tests, task, "its runtime shut down"));
            }
            _ => {}
        }
    }
}

/// Tasks still alive at the end of the observation: at a clean exit they outlived their
/// runtime (it was never shut down); otherwise only a lost waker is certain.
fn live_tasks(model: &Model, tests: &mut TestNames<'_>, found: &mut Vec<Occurrence>) {
    for task in model.tasks().filter(|t| t.is_live() && can_leak(t)) {
        if model.ending() == Ending::Exited {
            found.push(pending_at_end(model, tests, task, "the process exited"));
        } else if has_lost_its_waker(model, task)
            && model.now_ns().saturating_sub(task.stats.last_poll_end_ns) >= LOST_WAKER_GRACE_NS
        {
            let idle = human_ns(model.now_ns().saturating_sub(task.stats.last_poll_end_ns));
            let text = format!(
                "{} has been idle for {idle} with no waker left: nothing can ever wake it \
                 (a future returned Pending without keeping cx.waker())",
                describe(task.id, Some(task)),
            );
            found.push(occurrence(
                model,
                FindingKind::LostWaker,
                Some(task),
                text,
                Detail::LostWaker,
            ));
        }
    }
}

/// A task that was still pending when `end` happened: a lost waker if nothing could
/// have woken it, otherwise alive at shutdown.
fn pending_at_end(model: &Model, tests: &mut TestNames<'_>, task: &Task, end: &str) -> Occurrence {
    if has_lost_its_waker(model, task) {
        let text = format!(
            "{} was waiting with no waker left when {end}: nothing could ever have woken it \
             (a future returned Pending without keeping cx.waker())",
            describe(task.id, Some(task)),
        );
        return occurrence(
            model,
            FindingKind::LostWaker,
            Some(task),
            text,
            Detail::LostWaker,
        );
    }
    let test = tests.of(task);
    let in_test = test
        .as_deref()
        .map(|t| format!(" (in test `{t}`)"))
        .unwrap_or_default();
    let text = format!(
        "{} was still pending when {end}{in_test}; join it, abort it, or give it a way to stop",
        describe(task.id, Some(task)),
    );
    let mut occurrence = occurrence(
        model,
        FindingKind::AliveAtShutdown,
        Some(task),
        text,
        Detail::AliveAtShutdown {
            descendants: Vec::new(),
        },
    );
    occurrence.test = test;
    occurrence
}

/// Tasks a runtime still had when it shut down, where the probe counts them but sees no
/// task (built without `--cfg tokio_unstable`): one occurrence per task, so that the
/// finding's count is the tasks', with the test's name when the runtime was a test's.
fn counted_at_shutdown(model: &Model, found: &mut Vec<Occurrence>) {
    for alive in model.alive_at_shutdown() {
        let test =
            (alive.is_test && !alive.thread_name.is_empty()).then(|| alive.thread_name.clone());
        let whose = match &test {
            Some(test) => format!("the runtime of test `{test}`"),
            None => "the runtime of `main`".to_owned(),
        };
        let (tasks, them) = if alive.alive_tasks == 1 {
            ("1 task was".to_owned(), "it")
        } else {
            (format!("{} tasks were", alive.alive_tasks), "them")
        };
        let text = format!(
            "{tasks} still alive when {whose} shut down; join {them}, abort {them}, or give \
             {them} a way to stop. No spawn location: built without `--cfg tokio_unstable`, \
             tokio counts the tasks but names none"
        );
        let mut occurrence = occurrence(
            model,
            FindingKind::AliveAtShutdown,
            None,
            text,
            Detail::AliveAtShutdown {
                descendants: Vec::new(),
            },
        );
        occurrence.test = test;
        occurrence.weight = alive.alive_tasks;
        for _ in 0..alive.alive_tasks {
            found.push(occurrence.clone());
        }
    }
}

/// Whether a task is the kind that can leak: tokio never cancels `spawn_blocking` tasks and
/// a `block_on` future is the runtime's own body.
pub(crate) fn can_leak(task: &Task) -> bool {
    matches!(task.kind, Kind::Task | Kind::Local | Kind::Unknown)
}

/// Idle, polled at least once, and not one waker left: nothing holds a way to wake it.
///
/// Only trusted with waker tracking on, never from a count a task dump may have moved
/// (`wakers_unsure`), and never from a negative count (a miscount proves
/// nothing; tokio-console's lost-waker lint misfired on such states). A task woken through
/// `wake()` gives its waker up but is then scheduled, not idle, so it does not match.
fn has_lost_its_waker(model: &Model, task: &Task) -> bool {
    model.waker_tracking()
        && task.stats.polls > 0
        && (task.stats.lost_before_dump
            || (task.stats.wakers == 0
                && !task.stats.wakers_unsure
                && matches!(task.stats.state, State::Idle | State::Unknown)))
}

fn growth(model: &Model, found: &mut Vec<Occurrence>) {
    let (start, end) = (model.since_ns(), model.now_ns());
    let rising: Vec<_> = model
        .growth()
        .sites()
        .filter_map(|(site, series)| Some((site, kept_rising(series, start, end)?)))
        .collect();
    if rising.is_empty() {
        return;
    }
    // One pass for every rising site's example: its newest live task.
    let mut newest: HashMap<LocationId, &Task> = HashMap::new();
    for task in model.tasks().filter(|t| t.is_live()) {
        let entry = newest.entry(task.location).or_insert(task);
        if (task.spawned_ns, task.id) > (entry.spawned_ns, entry.id) {
            *entry = task;
        }
    }
    for (site, rise) in rising {
        let text = format!(
            "live tasks from this spawn site rose from {} to {} over {} and kept rising",
            rise.from,
            rise.to,
            human_ns(end - start),
        );
        let mut occurrence = occurrence(
            model,
            FindingKind::Growth,
            newest.get(&site).copied(),
            text,
            Detail::Growth {
                from: rise.from,
                to: rise.to,
            },
        );
        occurrence.spawn_location = model.location(site).to_owned();
        occurrence.weight = u64::from(rise.to - rise.from);
        found.push(occurrence);
    }
}

/// `task 12 "name"` or `task 12`.
pub(crate) fn describe(id: u64, task: Option<&Task>) -> String {
    match task.and_then(|t| t.name.as_deref()) {
        Some(name) => format!("task {id} \"{name}\""),
        None => format!("task {id}"),
    }
}
