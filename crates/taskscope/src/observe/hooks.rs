//! The hooks route: tokio's runtime hooks instead of its tracing spans.
//!
//! With `--cfg tokio_unstable`, a runtime can call back on every spawn, before and after
//! every poll, and when a task terminates. Fed from there, the probe skips what the
//! tracing route pays on every poll whether the probe wants it or not: tokio creating a
//! span per task, and the subscriber's registry looking that span up at every enter and
//! exit. The per-task state and everything downstream (watchdog, stall stacks, outcomes,
//! aggregator) are the same as on the tracing route.
//!
//! What the hooks cannot see, and the tracing route can: task names, `spawn_blocking` and
//! `LocalSet` tasks, wakers, and an abort (tokio ends an aborted task inside a poll just as
//! it ends a completed one). `docs/guide.md` ("Routes") says when to take which.
//!
//! Outcomes follow from where tokio runs the termination hook: inside the task's own poll
//! (completed, or panicked when the panic hook saw a panic start in that poll), or outside
//! any poll of it, which only a shutting-down runtime does (cancelled at shutdown).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use crate::base::{clock, diag};
use crate::tasks::cell::{Kind, TaskCell};
use crate::tasks::shared::Shared;
use crate::tasks::{lifecycle, outcome, task_table, threads};

/// The probe, once it runs on the hooks route: global because the macros' generated code
/// (`install`, `body`) reaches the probe through no handle of its own, and because
/// `layer()` must know that the hooks already report the tasks.
static ROUTE: OnceLock<Arc<Shared>> = OnceLock::new();

/// Switches the hooks on: from now on, runtimes given them report to `shared`.
pub(crate) fn activate(shared: Arc<Shared>) {
    let _ = ROUTE.set(shared);
}

/// The probe on the hooks route, for what the macros' generated code reports.
pub(crate) fn probe() -> Option<&'static Arc<Shared>> {
    ROUTE.get()
}

/// Whether the probe runs on the hooks route.
pub(crate) fn is_active() -> bool {
    ROUTE.get().is_some()
}

/// Adds the probe's hooks to a runtime being built, for apps that build their runtimes
/// by hand rather than with `#[taskscope::main]`:
///
/// ```no_run
/// taskscope::Builder::from_env().init_with_hooks().expect("the probe starts");
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// taskscope::hooks::install(&mut builder);
/// let runtime = builder.enable_all().build().unwrap();
/// ```
///
/// On the tracing route (the probe started by [`crate::init`], or the hooks route turned
/// down by waker tracking or `TASKSCOPE_ROUTE=tracing`) this does nothing: tokio's spans
/// already report every runtime's tasks. Before any probe is started, it says so on stderr.
pub fn install(builder: &mut tokio::runtime::Builder) -> &mut tokio::runtime::Builder {
    #[cfg(tokio_unstable)]
    if let Some(shared) = ROUTE.get() {
        shared.instrumentation_seen.store(true, Ordering::Relaxed);
        return builder
            .on_task_spawn(|meta| spawned(meta.id(), meta.spawned_at()))
            .on_before_task_poll(|meta| poll_started(meta.id()))
            .on_after_task_poll(|meta| poll_ended(meta.id()))
            .on_task_terminate(|meta| terminated(meta.id()));
    }
    // Without the cfg, tokio has no task hooks: the thread hooks say when each worker
    // parks, and the watchdog watches the unparked ones from outside (`worker_watch.rs`).
    #[cfg(not(tokio_unstable))]
    if ROUTE.get().is_some() {
        return builder
            .on_thread_park(crate::tasks::worker_park::parking)
            .on_thread_unpark(crate::tasks::worker_park::unparked);
    }
    if !crate::setup::builder::installed() {
        static WARNED: AtomicBool = AtomicBool::new(false);
        diag::warn_once(
            &WARNED,
            "taskscope::hooks::install was called before the probe started; start it first \
             with taskscope::Builder::from_env().init_with_hooks()",
        );
    }
    builder
}

thread_local! {
    /// A task whose termination hook ran inside its own poll on this thread. Its end
    /// waits for that poll's end hook, so that it is published with the final poll
    /// counted, and the cell leaves the table only when nothing uses it any more.
    static ENDED_IN_POLL: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// The last task whose termination hook came for an id the table does not know. tokio
    /// runs it *before* the spawn hook for a task spawned onto a runtime that is already
    /// shutting down.
    static ENDED_UNKNOWN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(tokio_unstable)]
fn spawned(id: tokio::task::Id, at: &'static std::panic::Location<'static>) {
    let Some(shared) = ROUTE.get() else { return };
    if crate::base::quiet::is_quiet() {
        return;
    }
    register(
        shared,
        lifecycle::Spawn {
            id: task_table::task_id(id),
            kind: Kind::Task,
            name: None,
            file: at.file(),
            line: at.line(),
            column: at.column(),
        },
    );
}

/// Starts tracking a task: its cell goes into the table (and to the aggregator).
fn register(shared: &Shared, spawn: lifecycle::Spawn) -> Option<Arc<TaskCell>> {
    let id = spawn.id;
    lifecycle::spawned(shared, spawn, |cell| {
        if ENDED_UNKNOWN.try_with(|e| e.replace(0)).unwrap_or(0) == id {
            // Its termination already ran: a spawn onto a runtime shutting down.
            cell.set_end(outcome::ended_at_shutdown());
        } else {
            task_table::insert(id, cell.clone());
        }
    })
}

#[cfg(tokio_unstable)]
fn poll_started(id: tokio::task::Id) {
    let Some(shared) = ROUTE.get() else { return };
    // SAFETY: tokio polls only live tasks, and a live task's cell leaves the table only
    // at its termination, after this poll's end (`terminated`, `end_poll`).
    let Some(cell) = (unsafe { task_table::live(task_table::task_id(id)) }) else {
        return;
    };
    begin_poll(shared, cell);
}

#[cfg(tokio_unstable)]
fn poll_ended(id: tokio::task::Id) {
    let Some(shared) = ROUTE.get() else { return };
    end_poll(shared, task_table::task_id(id));
}

#[cfg(tokio_unstable)]
fn terminated(id: tokio::task::Id) {
    let Some(shared) = ROUTE.get() else { return };
    let id = task_table::task_id(id);
    let own_poll = threads::with_local(|l| l.with_polling_task(id, |_| ()).is_some());
    if own_poll.unwrap_or(false) {
        // Ended by its own poll: `end_poll` takes it from the table once that poll is over.
        let _ = ENDED_IN_POLL.try_with(|e| e.set(id));
        return;
    }
    let Some(cell) = task_table::remove(id) else {
        let _ = ENDED_UNKNOWN.try_with(|e| e.set(id));
        return;
    };
    lifecycle::ended(shared, &cell, outcome::ended_at_shutdown());
}

/// A poll of `cell` (in the task table, or a body's own) starts on this thread.
#[inline]
fn begin_poll(shared: &Shared, cell: &TaskCell) {
    threads::with_local(|local| {
        // SAFETY: the table (or the body) holds the cell until after `end_poll`: a task
        // leaves the table only once the poll its termination came in has ended.
        unsafe { lifecycle::poll_started(shared, local, cell, 0) }
    });
}

/// The poll of task `id` that [`begin_poll`] started on this thread returns; when the task
/// terminated inside it, the task ends here.
#[inline]
fn end_poll(shared: &Shared, id: u64) {
    threads::with_local(|local| {
        local.with_polling_task(id, |cell| {
            let Some(returned_ns) = lifecycle::poll_ended(shared, local, cell) else {
                return;
            };
            let ended = ENDED_IN_POLL
                .try_with(|e| e.get() == id && e.replace(0) == id)
                .unwrap_or(false);
            if !ended {
                lifecycle::announce_late(shared, cell, || task_table::get(id));
                return;
            }
            let mut end = outcome::ended_in_own_poll(cell, returned_ns, local.thread_number());
            if end.outcome == taskscope_api::v1::Outcome::Completed
                && crate::tasks::closing::current_runtime_is_closing()
            {
                end.outcome = taskscope_api::v1::Outcome::CancelledAtShutdown;
            }
            match task_table::remove(id) {
                Some(owned) => lifecycle::ended(shared, &owned, end),
                None => cell.set_end(end),
            }
        })
    });
}

/// The body of `#[taskscope::main]` or `#[taskscope::test]`, tracked as a `block_on` task
/// so that a stall in the body itself is seen on the hooks route too.
#[doc(hidden)]
pub struct Body<F> {
    future: Pin<Box<F>>,
    cell: Option<Arc<TaskCell>>,
    finished: bool,
}

/// Wraps the body of `name`, written at `file:line:column`.
#[doc(hidden)]
pub fn body<F: Future>(
    future: F,
    name: &str,
    file: &'static str,
    line: u32,
    column: u32,
) -> Body<F> {
    let cell = ROUTE.get().and_then(|shared| {
        let id = task_table::next_body_id();
        let spawn = lifecycle::Spawn {
            id,
            kind: Kind::BlockOn,
            name: Some(name.into()),
            file,
            line,
            column,
        };
        let cell = register(shared, spawn)?;
        // Not through the table: the body's own polls below find it directly.
        task_table::remove(id);
        Some(cell)
    });
    Body {
        future: Box::pin(future),
        cell,
        finished: false,
    }
}

/// Ends the body's poll when dropped: also when the body panics out of it (the panic is
/// then kept on its cell).
struct PollGuard<'a> {
    shared: &'a Shared,
    cell: &'a TaskCell,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        end_poll(self.shared, self.cell.identity.id);
    }
}

impl<F: Future> Future for Body<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let (Some(shared), Some(cell)) = (ROUTE.get(), this.cell.as_ref()) else {
            return this.future.as_mut().poll(cx);
        };
        begin_poll(shared, cell);
        let guard = PollGuard { shared, cell };
        let result = this.future.as_mut().poll(cx);
        drop(guard);
        if result.is_ready() {
            this.finished = true;
            let thread = threads::with_local(|l| l.thread_number()).unwrap_or(0);
            let end = outcome::ended_in_own_poll(cell, clock::now_ns(), thread);
            lifecycle::ended(shared, cell, end);
        }
        result
    }
}

impl<F> Drop for Body<F> {
    fn drop(&mut self) {
        let (Some(shared), Some(cell)) = (ROUTE.get(), &self.cell) else {
            return;
        };
        if self.finished {
            return;
        }
        let mut end = outcome::ended_at_shutdown();
        end.panic = cell.panic().cloned();
        end.outcome = if end.panic.is_some() {
            taskscope_api::v1::Outcome::Panicked
        } else {
            taskscope_api::v1::Outcome::Cancelled
        };
        lifecycle::ended(shared, cell, end);
    }
}
