//! Which task each thread is polling, and since when.
//!
//! Every thread that polls a task gets a [`ThreadSlot`] that it alone writes and that the
//! watchdog reads from its own thread. This is what lets the watchdog see a poll that is
//! *still running* past the stall threshold, which a histogram filled after the poll
//! returns never can. The slot is a tiny seqlock (sequence, task, start: `poll_slot.rs`,
//! model-checked) so that the watchdog never pairs one poll's task with another poll's
//! start time.
//!
//! # The poll stack's pointers
//!
//! Each poll in progress is a frame on its thread's poll stack, holding a bare pointer to
//! the task's cell: taking a counted reference would add two contended atomic operations to
//! every poll. These are the rules that keep the pointers sound, all enforced here:
//!
//! * A frame is pushed only by [`Local::enter`], whose caller promises that the cell stays
//!   alive until the matching [`Local::exit`]. Each route keeps that promise with the owner
//!   it already has: the tracing route's span extensions hold the cell until the span
//!   closes, which tokio does only after its last exit; the hooks route's task table holds
//!   it until the task's termination, whose removal waits for the end of the poll it came
//!   in (`hooks.rs`).
//! * A frame's pointer is dereferenced only on its own thread, while the frame is on the
//!   stack, and handed out only as a reference that cannot outlive the call it is lent to
//!   ([`Local::with_polling_task`], [`Local::with_polling_span`]).

use std::cell::{Cell, OnceCell};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::tasks::cell::TaskCell;
use crate::tasks::poll_slot::PollSlot;
pub(crate) use crate::tasks::poll_slot::Polling;
use crate::tasks::ring::{Event, EventRing};

/// Where a thread's flight-recorder ring comes from at its first event: the recorder
/// (`flight.rs`), which reads the rings of every thread and so sits above this module.
pub(crate) trait RingSource {
    /// A ring for this thread, `None` when the recorder is off or its budget is spent.
    fn take_ring(&self) -> Option<Arc<EventRing>>;
}

/// Innermost polls tracked per thread (a `block_on` body polling a `LocalSet` task polling
/// ... ). Deeper nesting is still counted, just not shown in the slot.
const MAX_NESTING: usize = 8;

/// Spawns a thread may have waiting for the aggregator (which takes them every 10 ms)
/// before further ones are announced late instead.
const MAX_INBOX: usize = 1 << 20;

/// A thread's published "polling task T since t0".
#[derive(Debug)]
pub(crate) struct ThreadSlot {
    pub(crate) number: u32,
    pub(crate) name: Box<str>,
    pub(crate) os_tid: u64,
    /// The poll in progress, for the watchdog.
    poll: PollSlot,
    exited: AtomicBool,
    /// Tasks spawned on this thread, not yet taken by the aggregator. A per-thread list
    /// rather than one shared bounded queue: a burst of spawns never has to be dropped, and
    /// the lock is only ever contended by the aggregator swapping the list out.
    inbox: Mutex<Vec<Arc<TaskCell>>>,
    /// Where a stack sampler can reach this thread.
    pub(crate) target: Option<taskscope_stack::ThreadTarget>,
    /// The thread's flight-recorder ring, from its first event on (`flight.rs`).
    ring: OnceLock<Arc<EventRing>>,
}

impl ThreadSlot {
    fn publish(&self, polling: Option<Polling>) {
        self.poll.publish(polling);
    }

    /// The poll in progress on this thread, if a consistent reading is had.
    pub(crate) fn read(&self) -> Option<Polling> {
        self.poll.read()
    }

    /// Changes whenever a poll starts or returns on this thread ([`PollSlot::generation`]).
    pub(crate) fn generation(&self) -> u32 {
        self.poll.generation()
    }

    /// Whether the thread has exited: once this says so, the thread writes nothing more
    /// (its ring included).
    pub(crate) fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// The thread's flight-recorder ring, once it has one.
    pub(crate) fn ring(&self) -> Option<&Arc<EventRing>> {
        self.ring.get()
    }

    /// Takes the tasks spawned on this thread since the last call.
    pub(crate) fn take_spawned(&self) -> Vec<Arc<TaskCell>> {
        std::mem::take(&mut *self.inbox.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Every thread that has polled a task, for the watchdog and the aggregator: global
/// because a thread registers itself from inside a poll hook, which carries no context.
static REGISTRY: Mutex<Vec<Arc<ThreadSlot>>> = Mutex::new(Vec::new());
static NEXT_NUMBER: AtomicU32 = AtomicU32::new(1);

/// Every thread that has polled a task so far.
pub(crate) fn all() -> Vec<Arc<ThreadSlot>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A number that changes whenever any thread starts or ends a poll: equal readings a
/// moment apart mean no poll began or ended in between.
pub(crate) fn activity() -> u64 {
    REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|slot| u64::from(slot.generation()))
        .fold(0, u64::wrapping_add)
}

/// A task about to be polled: its cell, and the two facts of it the start of a poll needs.
///
/// A route that already knows them passes them in ([`Polled::known`]), so that the start
/// of a poll only *writes* the task's cell: for a task not polled lately the cell is cold,
/// a read of it waits for memory before the task's own poll can run, while a write goes
/// out in the background as the poll runs (measured on the hooks route with 10,000 tasks
/// sleeping in turn: the read of the id was half of the poll hook's samples).
#[derive(Clone, Copy)]
pub(crate) struct Polled<'a> {
    pub(crate) cell: &'a TaskCell,
    pub(crate) task: u64,
    pub(crate) can_stall: bool,
}

impl<'a> Polled<'a> {
    /// A poll of `cell`, whose id and kind are read from it.
    pub(crate) fn of(cell: &'a TaskCell) -> Self {
        Self {
            cell,
            task: cell.identity.id,
            can_stall: cell.can_stall(),
        }
    }

    /// A poll of `cell`, task `task`, which `can_stall` or not: `cell`'s own id and kind,
    /// which the caller knows without reading the cell.
    pub(crate) fn known(cell: &'a TaskCell, task: u64, can_stall: bool) -> Self {
        debug_assert_eq!(cell.identity.id, task);
        debug_assert_eq!(cell.can_stall(), can_stall);
        Self {
            cell,
            task,
            can_stall,
        }
    }
}

/// A poll in progress on this thread.
#[derive(Clone, Copy)]
struct Frame {
    cell: *const TaskCell,
    task: u64,
    /// The tracing route's span id for this poll (0 on the hooks route), so that the
    /// span's exit finds the cell here instead of in the registry.
    span: u64,
    started_ns: u64,
    can_stall: bool,
    /// This thread's `Local::own` when the poll started.
    own_at_start: OwnTime,
}

/// The probe's own time on a thread, in ns: all of it as wall time, and the part of it
/// also timed in the thread's CPU time (see [`Local::own_stretch_start`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OwnTime {
    /// Wall time of every stretch the probe's hooks ran inside the app's polls.
    pub(crate) wall_ns: u64,
    /// Wall time of the stretches also timed in CPU time (a part of `wall_ns`).
    pub(crate) exact_wall_ns: u64,
    /// CPU time of those stretches: their wall time less the time the thread waited for
    /// a CPU in them.
    pub(crate) exact_cpu_ns: u64,
}

impl OwnTime {
    pub(crate) const ZERO: Self = Self {
        wall_ns: 0,
        exact_wall_ns: 0,
        exact_cpu_ns: 0,
    };

    fn since(self, earlier: Self) -> Self {
        Self {
            wall_ns: self.wall_ns.wrapping_sub(earlier.wall_ns),
            exact_wall_ns: self.exact_wall_ns.wrapping_sub(earlier.exact_wall_ns),
            exact_cpu_ns: self.exact_cpu_ns.wrapping_sub(earlier.exact_cpu_ns),
        }
    }
}

/// A stretch of the probe's own code on an app thread, from [`Local::own_stretch_start`]
/// to [`Local::own_stretch_end`].
#[must_use]
pub(crate) struct OwnStretch {
    wall_start_ns: u64,
    /// The thread's CPU time at the start, when the stretch is timed in CPU time too.
    cpu_start_ns: Option<u64>,
}

/// This thread's poll bookkeeping. Only its own thread touches it.
pub(crate) struct Local {
    slot: OnceCell<Arc<ThreadSlot>>,
    stack: [Cell<Frame>; MAX_NESTING],
    depth: Cell<usize>,
    /// The last poll that returned on this thread: (task, end time).
    last_exit: Cell<(u64, u64)>,
    /// The probe's own time on this thread so far, as timed by its hooks that run inside
    /// the app's polls (a spawn hook runs inside the poll that spawns): a poll's share is
    /// the difference between its end and its start, and is not the app's.
    own: Cell<OwnTime>,
    /// This thread's flight-recorder ring: taken at its first event, `None` when the
    /// recorder is off or has no ring left for it.
    ring: OnceCell<Option<Arc<EventRing>>>,
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.get() {
            slot.publish(None);
            // Release: the reader that sees it sees every event this thread recorded.
            slot.exited.store(true, Ordering::Release);
        }
    }
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            slot: OnceCell::new(),
            stack: [const {
                Cell::new(Frame {
                    cell: std::ptr::null(),
                    task: 0,
                    span: 0,
                    started_ns: 0,
                    can_stall: false,
                    own_at_start: OwnTime::ZERO,
                })
            }; MAX_NESTING],
            depth: Cell::new(0),
            last_exit: Cell::new((0, 0)),
            own: Cell::new(OwnTime::ZERO),
            ring: OnceCell::new(),
        }
    };
}

/// Runs `f` with this thread's bookkeeping, unless the thread is being torn down.
#[inline]
pub(crate) fn with_local<R>(f: impl FnOnce(&Local) -> R) -> Option<R> {
    LOCAL.try_with(f).ok()
}

impl Local {
    fn slot(&self) -> &Arc<ThreadSlot> {
        self.slot.get_or_init(register_current_thread)
    }

    /// Hands a new task to the aggregator through this thread's inbox; `false` when the
    /// inbox is implausibly full (the aggregator has stopped taking from it).
    pub(crate) fn post_spawned(&self, cell: &Arc<TaskCell>) -> bool {
        let mut inbox = self.slot().inbox.lock().unwrap_or_else(|e| e.into_inner());
        if inbox.len() >= MAX_INBOX {
            return false;
        }
        inbox.push(cell.clone());
        true
    }

    /// Appends `event` to this thread's flight-recorder ring (taking one from `flight` at
    /// the thread's first event). No lock, no allocation after the first, no wait: a full
    /// ring writes over its oldest event, which its reader counts as lost (`ring.rs`). Only threads that have polled or spawned a
    /// task record: a thread that merely wakes or drops one (a plain `std` thread sending
    /// on a channel) is not made one of the probe's threads for it.
    #[inline]
    pub(crate) fn record(&self, flight: &impl RingSource, event: Event) {
        if self.slot.get().is_none() {
            return;
        }
        let ring = self.ring.get_or_init(|| {
            let ring = flight.take_ring()?;
            let _ = self.slot().ring.set(ring.clone());
            Some(ring)
        });
        if let Some(ring) = ring {
            ring.push(event);
        }
    }

    /// This thread's slot (registering the thread if it has not polled yet).
    pub(crate) fn thread_slot(&self) -> Arc<ThreadSlot> {
        self.slot().clone()
    }

    /// This thread's number.
    pub(crate) fn thread_number(&self) -> u32 {
        self.slot().number
    }

    /// The innermost task being polled on this thread, 0 when none.
    pub(crate) fn current_task(&self) -> u64 {
        match self.depth.get() {
            0 => 0,
            depth => self.stack[depth.min(MAX_NESTING) - 1].get().task,
        }
    }

    /// Runs `f` on the cell of the innermost poll on this thread when that poll is task
    /// `id`'s (the hooks route, which knows only ids).
    pub(crate) fn with_polling_task<R>(
        &self,
        id: u64,
        f: impl FnOnce(&TaskCell) -> R,
    ) -> Option<R> {
        self.with_innermost(|frame| frame.task == id, f)
    }

    /// Runs `f` on the cell of the innermost poll on this thread when that poll is the
    /// enter of tracing span `span` (the tracing route, which finds it here rather than in
    /// the span registry).
    pub(crate) fn with_polling_span<R>(
        &self,
        span: u64,
        f: impl FnOnce(&TaskCell) -> R,
    ) -> Option<R> {
        if span == 0 {
            return None;
        }
        self.with_innermost(|frame| frame.span == span, f)
    }

    fn with_innermost<R>(
        &self,
        matches: impl FnOnce(&Frame) -> bool,
        f: impl FnOnce(&TaskCell) -> R,
    ) -> Option<R> {
        let depth = self.depth.get();
        if depth == 0 || depth > MAX_NESTING {
            return None;
        }
        let frame = self.stack[depth - 1].get();
        if frame.cell.is_null() || !matches(&frame) {
            return None;
        }
        // SAFETY: the frame is on this thread's stack, so its poll has not returned, and
        // `enter`'s caller keeps the cell alive until then (module doc). The reference is
        // lent to `f` only, which cannot keep it.
        Some(f(unsafe { &*frame.cell }))
    }

    /// The probe's hooks took `ns` of this thread's wall time (inside a poll or not: only
    /// the difference over a poll is ever read).
    #[inline]
    pub(crate) fn add_own_time(&self, ns: u64) {
        let mut own = self.own.get();
        own.wall_ns = own.wall_ns.wrapping_add(ns);
        self.own.set(own);
    }

    /// A stretch of the probe's own code starts at `now_ns` on this thread. It is timed in
    /// the thread's CPU time as well as in wall time when the innermost poll that can stall
    /// has already run `exact_after_ns`: that poll may become a stall, whose judge must
    /// tell the app's time from the probe's, and wall time alone cannot say which of them
    /// the thread's waits for a CPU fell in (a spawn wakes a worker, which may take the
    /// CPU right then, inside the app's stretch). Reading the thread's CPU time costs a
    /// system call, so shorter polls, almost all of them, are timed in wall time only.
    #[inline]
    pub(crate) fn own_stretch_start(&self, now_ns: u64, exact_after_ns: u64) -> OwnStretch {
        let long_poll = self
            .innermost_stalling_start()
            .is_some_and(|started| now_ns.saturating_sub(started) >= exact_after_ns);
        OwnStretch {
            wall_start_ns: now_ns,
            cpu_start_ns: if long_poll {
                crate::base::clock::thread_cpu_ns()
            } else {
                None
            },
        }
    }

    /// The stretch [`Local::own_stretch_start`] began ends now.
    #[inline]
    pub(crate) fn own_stretch_end(&self, stretch: OwnStretch) {
        let wall_ns = crate::base::clock::now_ns().saturating_sub(stretch.wall_start_ns);
        let mut own = self.own.get();
        own.wall_ns = own.wall_ns.wrapping_add(wall_ns);
        if let Some(cpu_start) = stretch.cpu_start_ns
            && let Some(cpu_end) = crate::base::clock::thread_cpu_ns()
        {
            // The two clocks are read a few instructions apart: never more CPU than wall.
            let cpu_ns = cpu_end.saturating_sub(cpu_start).min(wall_ns);
            own.exact_wall_ns = own.exact_wall_ns.wrapping_add(wall_ns);
            own.exact_cpu_ns = own.exact_cpu_ns.wrapping_add(cpu_ns);
        }
        self.own.set(own);
    }

    /// When the innermost poll on this thread that can stall started, if there is one.
    fn innermost_stalling_start(&self) -> Option<u64> {
        let depth = self.depth.get();
        if depth > MAX_NESTING {
            return None;
        }
        self.innermost_stalling(depth).map(|f| f.started_ns)
    }

    /// The innermost of the bottom `depth` frames whose poll can stall: tokio runs each
    /// worker thread's scheduler loop inside a blocking task, whose "poll" lasts as long as
    /// the thread and must never be taken for a stalled poll.
    fn innermost_stalling(&self, depth: usize) -> Option<Frame> {
        self.stack[..depth.min(MAX_NESTING)]
            .iter()
            .rev()
            .map(Cell::get)
            .find(|f| !f.cell.is_null() && f.can_stall)
    }

    /// The probe's own time inside the innermost poll on this thread so far (nothing when
    /// the nesting is too deep to tell): to be read before [`Local::exit`] ends that poll.
    pub(crate) fn own_time_in_poll(&self) -> OwnTime {
        match self.depth.get() {
            depth @ 1..=MAX_NESTING => self
                .own
                .get()
                .since(self.stack[depth - 1].get().own_at_start),
            _ => OwnTime::ZERO,
        }
    }

    /// Whether a poll is in progress on this thread.
    pub(crate) fn is_polling(&self) -> bool {
        self.depth.get() > 0
    }

    /// Moves the end of the poll that just returned to `now_ns`: the probe did slow work of
    /// its own after it (reporting a stall), which must not look like time the scheduler
    /// spent between the poll and what follows (see `outcome.rs`).
    pub(crate) fn restamp_exit(&self, task: u64, now_ns: u64) {
        if self.last_exit.get().0 == task {
            self.last_exit.set((task, now_ns));
        }
    }

    /// A poll of `polled`'s task starts now; `span` is the tracing route's span id for it (0
    /// on the hooks route). Reads nothing from the task's cell (see [`Polled`]). Returns how
    /// long after the same task's previous poll returned on this thread, with nothing else
    /// polled here in between (`u64::MAX` when that is not the case): see `outcome.rs` for
    /// what this tells.
    ///
    /// # Safety
    ///
    /// `polled.cell` must stay alive until the matching [`Local::exit`] on this thread
    /// (module doc): the poll stack keeps a bare pointer to it until then.
    #[inline]
    pub(crate) unsafe fn enter(&self, polled: Polled<'_>, span: u64, now_ns: u64) -> u64 {
        let Polled {
            cell,
            task,
            can_stall,
        } = polled;
        let (last_task, last_end) = self.last_exit.get();
        let reentry_gap = if last_task == task {
            now_ns.saturating_sub(last_end)
        } else {
            u64::MAX
        };
        let depth = self.depth.get();
        if depth < MAX_NESTING {
            self.stack[depth].set(Frame {
                cell,
                task,
                span,
                started_ns: now_ns,
                can_stall,
                own_at_start: self.own.get(),
            });
        }
        self.depth.set(depth + 1);
        if can_stall {
            self.slot().publish(Some(Polling {
                task,
                started_ns: now_ns,
            }));
        }
        reentry_gap
    }

    /// The thread leaves its polls for the panic hooks (or for a dump taken inside one of
    /// them, `dump::capture`): the watchdog sees no poll until
    /// [`Local::resume_polls`]. Returns `since` when a poll was in progress.
    pub(crate) fn pause_polls(&self, since: u64) -> Option<u64> {
        if self.depth.get() == 0 {
            return None;
        }
        self.slot().publish(None);
        Some(since)
    }

    /// Back from the panic hooks that [`Local::pause_polls`] paused for at `since`: every
    /// poll in progress on this thread starts that much later, so that the time spent in
    /// the hooks counts towards no poll's duration and no stall. Returns that time.
    pub(crate) fn resume_polls(&self, since: u64, now_ns: u64) -> u64 {
        let held = now_ns.saturating_sub(since);
        let depth = self.depth.get().min(MAX_NESTING);
        for frame in &self.stack[..depth] {
            let mut shifted = frame.get();
            shifted.started_ns += held;
            frame.set(shifted);
        }
        let innermost = self.innermost_stalling(depth);
        self.slot().publish(innermost.map(|f| Polling {
            task: f.task,
            started_ns: f.started_ns,
        }));
        held
    }

    /// The innermost poll returns now: returns when it started.
    #[inline]
    pub(crate) fn exit(&self, cell: &TaskCell, now_ns: u64) -> Option<u64> {
        let depth = self.depth.get();
        if depth == 0 {
            return None;
        }
        let depth = depth - 1;
        self.depth.set(depth);
        self.last_exit.set((cell.identity.id, now_ns));
        if depth >= MAX_NESTING {
            return None;
        }
        let frame = self.stack[depth].get();
        if !std::ptr::eq(frame.cell, cell) {
            // Spans exited out of order: forget this thread's nesting rather than guess.
            self.depth.set(0);
            self.slot().publish(None);
            return None;
        }
        // The poll this one was nested in, if it can stall.
        let outer = self.innermost_stalling(depth);
        if cell.can_stall() {
            self.slot().publish(outer.map(|f| Polling {
                task: f.task,
                started_ns: f.started_ns,
            }));
        }
        Some(frame.started_ns)
    }
}

fn register_current_thread() -> Arc<ThreadSlot> {
    let current = std::thread::current();
    let number = NEXT_NUMBER.fetch_add(1, Ordering::Relaxed);
    let name = current
        .name()
        .map(Box::from)
        .unwrap_or_else(|| format!("thread-{number}").into_boxed_str());
    let slot = Arc::new(ThreadSlot {
        number,
        name,
        os_tid: os_tid(),
        poll: PollSlot {
            seq: AtomicU32::new(0),
            task: AtomicU64::new(0),
            started_ns: AtomicU64::new(0),
        },
        exited: AtomicBool::new(false),
        inbox: Mutex::new(Vec::new()),
        target: Some(taskscope_stack::Sampler::current_thread()),
        ring: OnceLock::new(),
    });
    REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(slot.clone());
    crate::base::schedstat::thread_registered(number);
    slot
}

#[cfg(target_os = "linux")]
fn os_tid() -> u64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u64 }
}

#[cfg(not(target_os = "linux"))]
fn os_tid() -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::cell::{Identity, Kind};

    fn cell(id: u64) -> TaskCell {
        TaskCell::new(Identity::for_test(id))
    }

    fn enter(local: &Local, cell: &TaskCell, now_ns: u64) -> u64 {
        // SAFETY: every cell in these tests outlives the polls it enters.
        unsafe { local.enter(Polled::of(cell), 0, now_ns) }
    }

    #[test]
    fn the_slot_shows_the_innermost_poll_and_restores_the_outer_one() {
        let (outer, inner) = (cell(1), cell(2));
        with_local(|local| {
            let slot = local.slot().clone();
            enter(local, &outer, 10);
            assert_eq!(
                slot.read(),
                Some(Polling {
                    task: 1,
                    started_ns: 10
                })
            );
            enter(local, &inner, 20);
            assert_eq!(
                slot.read(),
                Some(Polling {
                    task: 2,
                    started_ns: 20
                })
            );
            assert_eq!(local.exit(&inner, 30), Some(20));
            assert_eq!(
                slot.read(),
                Some(Polling {
                    task: 1,
                    started_ns: 10
                })
            );
            assert_eq!(local.exit(&outer, 40), Some(10));
            assert_eq!(slot.read(), None);
        });
    }

    #[test]
    fn a_poll_nested_in_a_blocking_task_does_not_leave_the_blocking_task_in_the_slot() {
        let worker_loop = TaskCell::new(Identity {
            id: 9,
            name: None,
            kind: Kind::Blocking,
            file: "tokio/src/runtime/blocking/pool.rs",
            line: 1,
            column: 1,
            parent: 0,
            spawned_ns: 0,
            spawn_thread: 0,
        });
        let task = cell(10);
        with_local(|local| {
            let slot = local.slot().clone();
            enter(local, &worker_loop, 10);
            assert_eq!(
                slot.read(),
                None,
                "a blocking task is never polling in the slot"
            );
            enter(local, &task, 20);
            assert_eq!(
                slot.read(),
                Some(Polling {
                    task: 10,
                    started_ns: 20
                })
            );
            local.exit(&task, 30);
            assert_eq!(
                slot.read(),
                None,
                "back in the worker loop, nothing is polling"
            );
            local.exit(&worker_loop, 40);
        });
    }

    #[test]
    fn the_probes_own_time_counts_in_every_poll_it_ran_inside_and_only_there() {
        let (outer, inner) = (cell(5), cell(6));
        with_local(|local| {
            local.add_own_time(1_000);
            enter(local, &outer, 10);
            assert_eq!(
                local.own_time_in_poll().wall_ns,
                0,
                "time before the poll is not its own"
            );
            local.add_own_time(5);
            enter(local, &inner, 20);
            local.add_own_time(7);
            assert_eq!(local.own_time_in_poll().wall_ns, 7);
            local.exit(&inner, 30);
            assert_eq!(
                local.own_time_in_poll().wall_ns,
                12,
                "the inner poll's is the outer's too"
            );
            local.exit(&outer, 40);
            assert!(!local.is_polling());
        });
    }

    #[test]
    fn only_the_probes_stretches_in_a_long_poll_are_timed_in_cpu_time_too() {
        let task = cell(7);
        let exact_after_ns = 10_000_000;
        with_local(|local| {
            let now = crate::base::clock::now_ns();
            enter(local, &task, now);
            let stretch = local.own_stretch_start(now, exact_after_ns);
            local.own_stretch_end(stretch);
            let short = local.own_time_in_poll();
            assert_eq!(
                (short.exact_wall_ns, short.exact_cpu_ns),
                (0, 0),
                "a poll that just started is timed in wall time only"
            );
            // The app's code runs on past a tenth of the threshold.
            std::thread::sleep(std::time::Duration::from_millis(12));
            let later = crate::base::clock::now_ns();
            let stretch = local.own_stretch_start(later, exact_after_ns);
            // 5 ms of the thread's CPU time of the probe's own (however long that takes on
            // a loaded machine), then a wait that is not CPU time (a sleep stands in).
            let cpu = || crate::base::clock::thread_cpu_ns().unwrap();
            let spun_from = cpu();
            while cpu() - spun_from < 5_000_000 {
                std::hint::black_box(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            local.own_stretch_end(stretch);
            let long = local.own_time_in_poll();
            assert_eq!(long.wall_ns, short.wall_ns + long.exact_wall_ns);
            assert!(long.exact_cpu_ns >= 5_000_000, "the spin ran: {long:?}");
            assert!(
                long.exact_cpu_ns + 50_000_000 <= long.exact_wall_ns,
                "the sleep is not CPU time: {long:?}"
            );
            local.exit(&task, later);
        });
    }

    #[test]
    fn reentering_right_after_the_own_poll_is_told_apart_from_a_later_reentry() {
        let task = cell(3);
        with_local(|local| {
            let other = cell(4);
            enter(local, &task, 1_000);
            local.exit(&task, 2_000);
            assert_eq!(enter(local, &task, 2_500), 500);
            local.exit(&task, 2_600);
            enter(local, &other, 3_000);
            local.exit(&other, 3_100);
            assert_eq!(enter(local, &task, 10_000_000), u64::MAX);
            local.exit(&task, 10_000_100);
        });
    }
}
