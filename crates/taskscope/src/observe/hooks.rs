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
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::base::clock;
use crate::tasks::cell::{Kind, TaskCell};
use crate::tasks::shared::Shared;
use crate::tasks::{lifecycle, outcome, task_table, threads};

/// Adds the hooks to a runtime being built: from then on its tasks report to `shared`
/// (`setup/hooks.rs` decides whether the probe takes the hooks at all).
pub(crate) fn add_to(builder: &mut tokio::runtime::Builder, shared: &Arc<Shared>) {
    #[cfg(tokio_unstable)]
    {
        shared
            .instrumentation_seen
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let on = |shared: &Arc<Shared>| shared.clone();
        let (spawn, before, after, end) = (on(shared), on(shared), on(shared), on(shared));
        builder
            .on_task_spawn(move |meta| spawned(&spawn, meta.id(), meta.spawned_at()))
            .on_before_task_poll(move |meta| poll_started(&before, meta.id()))
            .on_after_task_poll(move |meta| poll_ended(&after, meta.id()))
            .on_task_terminate(move |meta| terminated(&end, meta.id()));
    }
    // Without the cfg, tokio has no task hooks: the thread hooks say when each worker
    // parks, and the watchdog watches the unparked ones from outside (`worker_watch.rs`).
    #[cfg(not(tokio_unstable))]
    {
        let _ = shared;
        builder
            .on_thread_park(crate::tasks::worker_park::parking)
            .on_thread_unpark(crate::tasks::worker_park::unparked);
    }
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
fn spawned(shared: &Shared, id: tokio::task::Id, at: &'static std::panic::Location<'static>) {
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
fn poll_started(shared: &Shared, id: tokio::task::Id) {
    let id = task_table::task_id(id);
    // SAFETY: tokio polls only live tasks, and a live task's cell leaves the table only
    // at its termination, after this poll's end (`terminated`, `end_poll`).
    let Some(cell) = (unsafe { task_table::live(id) }) else {
        return;
    };
    // Every task in the table is a spawned task (`Kind::Task`), which can stall.
    begin_poll(shared, threads::Polled::known(cell, id, true));
}

#[cfg(tokio_unstable)]
fn poll_ended(shared: &Shared, id: tokio::task::Id) {
    end_poll(shared, task_table::task_id(id));
}

#[cfg(tokio_unstable)]
fn terminated(shared: &Shared, id: tokio::task::Id) {
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

/// A poll of `polled`'s task (in the task table, or a body's own) starts on this thread.
#[inline]
fn begin_poll(shared: &Shared, polled: threads::Polled<'_>) {
    threads::with_local(|local| {
        // SAFETY: the table (or the body) holds the cell until after `end_poll`: a task
        // leaves the table only once the poll its termination came in has ended.
        unsafe { lifecycle::poll_started(shared, local, polled, 0) }
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
                lifecycle::announce_late(shared, cell, lifecycle::Via::ThisThread, || {
                    task_table::get(id)
                });
                return;
            }
            let end = outcome::ended_in_own_poll(cell, returned_ns, local.thread_number());
            match task_table::remove(id) {
                Some(owned) => lifecycle::ended(shared, &owned, end),
                None => cell.set_end(end),
            }
        })
    });
}

/// The body a runtime's `block_on` polls, tracked as a `block_on` task so that a stall in
/// the body itself is seen on the hooks route too (no hook runs for a `block_on` body).
#[doc(hidden)]
pub struct Body<F> {
    future: Pin<Box<F>>,
    /// The probe and the body's cell, when the probe takes tasks from the hooks.
    tracked: Option<(Arc<Shared>, Arc<TaskCell>)>,
    finished: bool,
}

/// Wraps the body `name`, written at `file:line:column`, tracked by `shared` (when
/// given, and running).
pub(crate) fn body<F: Future>(
    shared: Option<&Arc<Shared>>,
    future: F,
    name: &str,
    file: &'static str,
    line: u32,
    column: u32,
) -> Body<F> {
    let tracked = shared.and_then(|shared| {
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
        Some((shared.clone(), cell))
    });
    Body {
        future: Box::pin(future),
        tracked,
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
        let Some((shared, cell)) = this.tracked.as_ref() else {
            return this.future.as_mut().poll(cx);
        };
        begin_poll(shared, threads::Polled::of(cell));
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
        let Some((shared, cell)) = &self.tracked else {
            return;
        };
        if self.finished {
            return;
        }
        lifecycle::ended(shared, cell, outcome::dropped_unfinished(cell));
    }
}
