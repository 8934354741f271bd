//! Deciding how a task ended: completed, cancelled, cancelled at shutdown, or panicked.
//!
//! tokio's instrumentation says only that a task's span closed. The rest is read from
//! what surrounds the close (see `docs/architecture.md`, "Outcomes", for where each rule
//! can be wrong):
//!
//! * **panicked**: a poll of the task returned by unwinding from a panic that our chained
//!   panic hook saw start inside that very poll.
//! * **completed**: tokio drops a finished task's future right after the poll that
//!   returned `Ready`, entering the span once more to do so. A final enter within
//!   [`CERTAINLY_SAME_STEP_NS`] of the task's own poll returning, on the same thread with
//!   nothing polled in between, is a completion.
//! * **cancelled at shutdown**: otherwise the probe asks the runtime whether it is shutting
//!   down. A task spawned on a runtime that is shutting down is cancelled on the spot, so a
//!   throw-away spawn answers "is this runtime closed?" exactly.
//! * **completed** (slower) vs **cancelled**: not shutting down, and the final enter came
//!   within [`SAME_STEP_NS`] of the task's own poll in the same way: completed; anything
//!   else (abort, `JoinSet` drop) is a cancellation.

use std::cell::RefCell;
use std::sync::Once;

use taskscope_api::v1::Outcome;

use crate::base::clock;
use crate::tasks::cell::{End, Panic, TaskCell};
use crate::tasks::threads;

/// A panic seen by the hook on this thread.
struct PanicRecord {
    task: u64,
    panic: Panic,
}

thread_local! {
    /// The panic hook (std's process-wide hook, given no context) leaves the panic of the
    /// task polling on its thread here, for that poll's end to take.
    static LAST_PANIC: RefCell<Option<PanicRecord>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Chains a panic hook that remembers which task panicked and why. The previous hook
/// (usually the default one that prints the message) still runs, with the thread's polls
/// paused: the time it takes (symbolizing a backtrace under `RUST_BACKTRACE=1` can hold
/// the thread for seconds) belongs to the panic, and is reported with it, not as a stall.
///
/// Services often install a hook of their own (to log panics through `tracing`) after the
/// probe has started, which replaces the probe's. The probe then chains itself in front of
/// the new one (see [`Rechain`]): the app's hook runs exactly as installed, and panics
/// keep their outcome.
pub(crate) fn install_panic_hook() {
    HOOK.call_once(|| std::panic::set_hook(chained(std::panic::take_hook())));
}

/// The probe's hook in front of `previous`.
fn chained(previous: PanicHook) -> PanicHook {
    let rechain = Rechain;
    Box::new(move |info| {
        let _ = &rechain;
        let task = threads::with_local(|l| l.current_task()).unwrap_or(0);
        if task == 0 {
            return previous(info);
        }
        let paused = threads::with_local(|l| l.pause_polls(clock::now_ns())).flatten();
        previous(info);
        let held_ns = paused
            .and_then(|since| threads::with_local(|l| l.resume_polls(since, clock::now_ns())))
            .unwrap_or(0);
        remember_panic(task, info, held_ns);
    })
}

/// Dropped with the probe's hook, which only happens when the app replaces the process's
/// panic hook: `std::panic::set_hook` drops the hook it replaces after releasing its lock,
/// precisely so that a destructor may set the hook again. The probe takes the app's new
/// hook and installs itself in front of it. (An app that chains the probe's hook itself,
/// `take_hook` then `set_hook`, keeps it and never gets here.)
struct Rechain;

impl Drop for Rechain {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        std::panic::set_hook(chained(std::panic::take_hook()));
    }
}

/// Keeps what the hook saw of a panic in `task`, for the end of the poll to find.
fn remember_panic(task: u64, info: &std::panic::PanicHookInfo<'_>, held_ns: u64) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic payload that is not a string)".to_owned());
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
    let _ = LAST_PANIC.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some(PanicRecord {
                task,
                panic: Panic {
                    message,
                    location,
                    held_ns,
                },
            });
        }
    });
}

/// A drop this soon after the task's own poll returned (same thread, nothing polled in
/// between) can only be tokio dropping a future that just completed: nothing else fits in
/// a few microseconds. Most completions land here and cost nothing more.
const CERTAINLY_SAME_STEP_NS: u64 = 3_000;

/// Up to this long, a drop straight after the task's own poll is still taken as completion
/// (slow builds and threads preempted on a busy machine stretch the gap) — unless the
/// runtime turns out to be shutting down, which is checked first.
const SAME_STEP_NS: u64 = 5_000_000;

/// A poll of `cell` returned by unwinding: keep the panic the hook saw start in it.
pub(crate) fn poll_unwound(cell: &TaskCell) {
    if let Some(panic) = take_panic_of(cell.identity.id) {
        cell.record_panic(panic);
    }
}

/// Decides how `cell`'s task ended. Called when its span closes, which is usually right
/// after tokio dropped the future, but can be later (spans created inside the task keep
/// it open), so the facts used were recorded on the cell when they happened.
pub(crate) fn decide(cell: &TaskCell) -> End {
    let thread = threads::with_local(|l| l.thread_number()).unwrap_or(0);
    let mut end = End {
        at_ns: clock::now_ns(),
        outcome: Outcome::Cancelled,
        thread,
        panic: cell.panic().cloned(),
    };
    if end.panic.is_some() {
        end.outcome = Outcome::Panicked;
        return end;
    }
    let gap = cell.reentry_gap_ns();
    if gap <= CERTAINLY_SAME_STEP_NS {
        end.outcome = Outcome::Completed;
        return end;
    }
    end.outcome = if runtime_is_closing() == Some(true) {
        Outcome::CancelledAtShutdown
    } else if gap <= SAME_STEP_NS {
        Outcome::Completed
    } else {
        Outcome::Cancelled
    };
    end
}

/// The hooks route (and a `block_on` body the probe wraps): the task ended inside its own
/// poll, so the future returned `Ready`, panicked (the panic hook saw it start in this
/// poll), or was aborted (which tokio's hooks cannot tell from completing:
/// `docs/guide.md`, "Routes"). A task that ends so while `#[taskscope::main]` or
/// `#[taskscope::test]` drop its runtime was alive at shutdown: tokio cancelled it right
/// after a poll it was in (a ticker woken every millisecond), see
/// [`crate::tasks::runtimes::current_runtime_is_closing`].
pub(crate) fn ended_in_own_poll(cell: &TaskCell, at_ns: u64, thread: u32) -> End {
    let mut end = End {
        at_ns,
        outcome: Outcome::Completed,
        thread,
        // Kept on the cell already when the poll unwound (`lifecycle::poll_ended`).
        panic: take_panic_of(cell.identity.id).or_else(|| cell.panic().cloned()),
    };
    if end.panic.is_some() {
        end.outcome = Outcome::Panicked;
    } else if crate::tasks::runtimes::current_runtime_is_closing() {
        end.outcome = Outcome::CancelledAtShutdown;
    }
    end
}

/// A `block_on` body the probe wraps was dropped before it returned `Ready`: it panicked
/// out of a poll (the panic is on its cell), or its caller gave up on it.
pub(crate) fn dropped_unfinished(cell: &TaskCell) -> End {
    let panic = cell.panic().cloned();
    End {
        at_ns: clock::now_ns(),
        outcome: if panic.is_some() {
            Outcome::Panicked
        } else {
            Outcome::Cancelled
        },
        thread: threads::with_local(|l| l.thread_number()).unwrap_or(0),
        panic,
    }
}

/// The hooks route: tokio ran the task's termination hook outside any poll of it, which
/// only its runtime shutting down does.
pub(crate) fn ended_at_shutdown() -> End {
    End {
        at_ns: clock::now_ns(),
        outcome: Outcome::CancelledAtShutdown,
        thread: threads::with_local(|l| l.thread_number()).unwrap_or(0),
        panic: None,
    }
}

fn take_panic_of(task: u64) -> Option<Panic> {
    LAST_PANIC
        .try_with(|last| {
            let mut last = last.try_borrow_mut().ok()?;
            if last.as_ref().is_some_and(|p| p.task == task) {
                last.take().map(|record| record.panic)
            } else {
                None
            }
        })
        .ok()
        .flatten()
}

/// Whether the runtime of the current thread is shutting down, `None` when there is no
/// runtime here.
///
/// tokio closes a runtime's task list before cancelling what is left in it, and cancels a
/// task spawned onto a closed list immediately, inside `spawn`. So a trivial spawn that
/// comes back already cancelled proves the runtime is shutting down; one that does not
/// proves it is not (then the spawned no-op simply runs and completes).
fn runtime_is_closing() -> Option<bool> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    Some(crate::tasks::runtimes::is_closed(&handle))
}
