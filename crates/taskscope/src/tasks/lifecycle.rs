//! One task's life as the probe records it, whichever route reports it.
//!
//! tokio tells the probe about a task in two ways: the tracing route hears its
//! `runtime.spawn` span being created, entered, exited and closed (`layer.rs`, and
//! `init_layer.rs`, which shares a subscriber with the app's logs); the hooks route hears
//! tokio's runtime hooks, which carry only the task's id (`hooks.rs`). Those modules only
//! translate their callbacks into the five moments below and keep the task's cell where
//! their route can find it again (a span's extensions, the task table). What the probe does
//! at each moment (the cell's statistics, the thread's poll stack the watchdog reads, a
//! stall's report, the hand-over to the aggregator, the accounting of what had to be
//! dropped) is written here once.
//!
//! The moments, in the order tokio produces them:
//!
//! 1. [`spawned`]: a cell for the task, announced to the aggregator;
//! 2. [`poll_started`] and 3. [`poll_ended`], once per poll;
//! 4. [`waker_op`], between and during polls (tracing route, waker tracking on);
//! 5. [`ended`], once, with the outcome the route could tell.
//!
//! The probe's own time inside an app's poll is timed here too, and kept apart from the
//! app's (`Local::own_stretch_start`): [`spawned`] runs inside the poll that spawns (a debug
//! build spends microseconds there per spawn), [`waker_op`] inside the poll that wakes,
//! and a poll nested in another (a `block_in_place`, a `LocalSet`) runs its own hooks
//! inside the outer one. A stall report carries that time, so that a poll the probe
//! itself pushed past the threshold is not judged the app's stall. Inside a poll that has
//! already run a tenth of the threshold (at least 1 ms), those stretches are timed in the
//! thread's CPU time as well, so that the judge knows how much the probe *ran* in the
//! poll, wherever the thread's waits for a CPU fell.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::base::clock;
use crate::tasks::cell::{End, Identity, Kind, TaskCell, WakeFrom, WakerOp};
use crate::tasks::ring::{Event, EventKind};
use crate::tasks::shared::Shared;
use crate::tasks::threads::{Local, Polled};
use crate::tasks::{outcome, threads};

/// What a route knows of a task when it is spawned.
pub(crate) struct Spawn {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    pub(crate) name: Option<Box<str>>,
    pub(crate) file: &'static str,
    pub(crate) line: u32,
    pub(crate) column: u32,
}

/// A task was spawned: its cell (parented to the task polling on this thread, if any),
/// given first to `keep` (where the route will find it at the task's polls), then to the
/// aggregator. When this thread cannot take it right now, the task is announced at the end
/// of its first poll instead, and the delay is counted. `None` once the probe is stopped:
/// the task is not tracked.
pub(crate) fn spawned(
    shared: &Shared,
    spawn: Spawn,
    keep: impl FnOnce(&Arc<TaskCell>),
) -> Option<Arc<TaskCell>> {
    let now = clock::now_ns();
    if shared.is_stopped() {
        return None;
    }
    let (parent, spawn_thread, stretch) = threads::with_local(|l| {
        let stretch = l.own_stretch_start(now, shared.exact_own_after_ns);
        let (parent, number) = (l.current_task(), l.thread_number());
        l.record(
            &shared.flight,
            event(EventKind::Spawn, spawn.id, now, parent),
        );
        (parent, number, Some(stretch))
    })
    .unwrap_or((0, 0, None));
    // tokio's instrumentation reached the probe. A body found running (`found_running`)
    // is not that: it is seen from outside, with or without tokio's spans.
    if !shared.instrumentation_seen.load(Ordering::Relaxed) {
        shared.instrumentation_seen.store(true, Ordering::Relaxed);
    }
    let cell = new_cell(spawn, parent, now, spawn_thread);
    keep(&cell);
    hand_over(shared, &cell, Via::ThisThread);
    if let Some(stretch) = stretch {
        threads::with_local(|l| l.own_stretch_end(stretch));
    }
    Some(cell)
}

/// A task found already running on thread `thread` since `since_ns`, seen from one of the
/// probe's own threads: the `block_on` body `init()` was called in, which the watchdog
/// watches from outside (`detect/body_watch.rs`). Announced the way any spawn is, and
/// counted the same way when it cannot be taken now ([`announce_late`] takes it later);
/// `None` once the probe is stopped.
pub(crate) fn found_running(
    shared: &Shared,
    spawn: Spawn,
    thread: u32,
    since_ns: u64,
) -> Option<Arc<TaskCell>> {
    if shared.is_stopped() {
        return None;
    }
    let cell = new_cell(spawn, 0, since_ns, thread);
    hand_over(shared, &cell, Via::Queue);
    Some(cell)
}

/// How a new task reaches the aggregator.
#[derive(Clone, Copy)]
pub(crate) enum Via {
    /// The inbox of the thread the task is seen on (an app thread).
    ThisThread,
    /// The shared queue: the task is seen from a probe thread, which has no inbox (and
    /// must not get a thread slot of its own, where clients would see it).
    Queue,
}

fn new_cell(spawn: Spawn, parent: u64, spawned_ns: u64, spawn_thread: u32) -> Arc<TaskCell> {
    crate::tasks::recycle::cell(Identity {
        id: spawn.id,
        name: spawn.name,
        kind: spawn.kind,
        file: spawn.file,
        line: spawn.line,
        column: spawn.column,
        parent,
        spawned_ns,
        spawn_thread,
    })
}

/// Hands a new task to the aggregator, or counts that it has to wait for a later turn.
fn hand_over(shared: &Shared, cell: &Arc<TaskCell>, via: Via) {
    if !announce(shared, cell, via) {
        shared
            .drops
            .spawn_events_delayed
            .fetch_add(1, Ordering::Relaxed);
    }
}

fn announce(shared: &Shared, cell: &Arc<TaskCell>, via: Via) -> bool {
    match via {
        Via::ThisThread => shared.announce(cell),
        Via::Queue => shared.announce_queued(cell),
    }
}

/// A flight-recorder event.
#[inline]
fn event(kind: EventKind, task: u64, at_ns: u64, other: u64) -> Event {
    Event {
        kind,
        task,
        at_ns,
        other,
    }
}

/// The probe's code running on this thread from `now_ns` until `f` returns is its own, not
/// the app's.
#[inline]
fn own_stretch<R>(shared: &Shared, now_ns: u64, f: impl FnOnce() -> R) -> R {
    let stretch = threads::with_local(|l| l.own_stretch_start(now_ns, shared.exact_own_after_ns));
    let result = f();
    if let Some(stretch) = stretch {
        threads::with_local(|l| l.own_stretch_end(stretch));
    }
    result
}

/// A poll of `polled`'s task starts on `local`'s thread; `span` is the tracing route's span
/// id for it (0 on the hooks route). Without waker tracking, nothing is read from the
/// task's cell here, only written (see [`Polled`]).
///
/// # Safety
///
/// `polled.cell` must stay alive until the matching [`poll_ended`] on this thread returns:
/// the thread's poll stack keeps a pointer to it (see `threads.rs` for the rules).
#[inline]
pub(crate) unsafe fn poll_started(shared: &Shared, local: &Local, polled: Polled<'_>, span: u64) {
    let cell = polled.cell;
    cell.prefetch_histogram();
    let now = clock::now_ns();
    let nested = local.is_polling();
    // SAFETY: forwarded from this function's own contract.
    let reentry_gap = unsafe { local.enter(polled, span, now) };
    let tracking = shared.config.waker_tracking();
    cell.poll_started(now, local.thread_number(), reentry_gap, tracking);
    let task = polled.task;
    local.record(&shared.flight, event(EventKind::PollStart, task, now, 0));
    if nested {
        // Inside the outer poll: this hook's time is the probe's, not the outer task's.
        local.add_own_time(clock::now_ns().saturating_sub(now));
    }
}

/// The poll of `cell` that [`poll_started`] began on `local`'s thread returns: its
/// statistics, the panic it unwound with (if any), and the report of a stall when it held
/// the thread past the threshold. Returns when it returned; `None` when this thread's poll
/// stack does not match (spans exited out of order), and nothing was counted.
#[inline]
pub(crate) fn poll_ended(shared: &Shared, local: &Local, cell: &TaskCell) -> Option<u64> {
    let now = clock::now_ns();
    let own = local.own_time_in_poll();
    // Before the poll leaves the slot: a reader that sees the slot change finds the end in
    // the ring.
    let task = cell.identity.id;
    local.record(&shared.flight, event(EventKind::PollEnd, task, now, 0));
    let started = local.exit(cell, now)?;
    let duration = cell.poll_ended(started, now);
    if std::thread::panicking() {
        outcome::poll_unwound(cell);
    }
    if duration >= shared.threshold_ns && cell.can_stall() {
        // Reported whenever the watchdog may have seen it running, even when the probe's
        // own time is what took it past the threshold: the stall's end says how much.
        shared.report_stall_end(cell, local.thread_number(), started, duration, own);
        // Reporting took time of the probe's own, which must not look like time the
        // scheduler spent after this poll (`outcome.rs`).
        local.restamp_exit(cell.identity.id, clock::now_ns());
    }
    if local.is_polling() {
        // Inside the outer poll: this hook's time (with a stall's report) is the probe's.
        local.add_own_time(clock::now_ns().saturating_sub(now));
    }
    Some(now)
}

/// Hands the aggregator a task whose spawn it could not take then, `via` the way it was
/// seen. `owned` gives the route's owning pointer to the cell, asked for only when it is
/// needed.
pub(crate) fn announce_late(
    shared: &Shared,
    cell: &TaskCell,
    via: Via,
    owned: impl FnOnce() -> Option<Arc<TaskCell>>,
) {
    if !cell.is_announced()
        && let Some(cell) = owned()
    {
        announce(shared, &cell, via);
    }
}

/// A waker of `cell`'s task was cloned, dropped or used (tracing route, waker tracking
/// on). A wake is also a flight-recorder event of the waking thread.
///
/// While a dump is being taken and just after, tokio juggles the wakers of the tasks it
/// traces (a wake by reference in the trace, a waker kept to wake the task once the
/// scheduler regains control) through references it does not always report as clones, so
/// a count can drift down by one. Every operation still counts, but a task that saw one
/// then has a count marked unsure (`TaskStats.wakers_unsure`), which never proves a lost
/// waker (`docs/architecture.md`, *Lost wakers*); a task whose waker really is lost holds
/// none for tokio to juggle, so a dump leaves it unmarked and its verdict as it was. The
/// dump's wakes are not counted as the app's.
pub(crate) fn waker_op(shared: &Shared, cell: &TaskCell, op: WakerOp) {
    let now = clock::now_ns();
    own_stretch(shared, now, || {
        if crate::tasks::dumping::is_tracing() || crate::tasks::dumping::in_aftermath() {
            cell.waker_op(op, now, WakeFrom::Dump);
            return;
        }
        let id = cell.identity.id;
        let own_poll = threads::with_local(|l| {
            let waker = l.current_task();
            if matches!(op, WakerOp::Wake | WakerOp::WakeByRef) {
                l.record(&shared.flight, event(EventKind::Wake, id, now, waker));
            }
            waker
        }) == Some(id);
        let from = if own_poll {
            WakeFrom::OwnPoll
        } else {
            WakeFrom::Elsewhere
        };
        cell.waker_op(op, now, from);
    })
}

/// The task ended as `end` says: the cell keeps the outcome for the aggregator, which
/// still gets the task if it never got its spawn (or counts it as lost).
pub(crate) fn ended(shared: &Shared, cell: &Arc<TaskCell>, end: End) {
    cell.set_end(end);
    let now = clock::now_ns();
    threads::with_local(|l| {
        l.record(
            &shared.flight,
            event(EventKind::End, cell.identity.id, now, 0),
        )
    });
    if !cell.is_announced() && !shared.announce(cell) {
        shared.drops.tasks_lost.fetch_add(1, Ordering::Relaxed);
    }
}
