//! Per-task state shared between the app threads that poll and wake a task and the
//! probe's aggregator that reads it.
//!
//! This is the whole of the hot path's data: a poll updates a handful of fields of its own
//! task's cell, all plain atomics, and never touches a queue, a lock or the allocator. The
//! aggregator reads the cells on its own schedule. Fields written only by the thread polling
//! the task (tokio polls a task on one thread at a time, with a happens-before edge between
//! polls) are updated with a load and a store instead of a locked read-modify-write.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};

use taskscope_api::histogram;

use crate::tasks::change_flag::ChangeFlag;
use crate::tasks::waits::{TaskWait, WaitTarget};
use taskscope_api::v1;

/// What tokio says the task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Task,
    Local,
    BlockOn,
    Blocking,
}

impl Kind {
    pub(crate) fn from_tokio(kind: &str) -> Option<Self> {
        match kind {
            "task" => Some(Kind::Task),
            "local" => Some(Kind::Local),
            "block_on" => Some(Kind::BlockOn),
            "blocking" => Some(Kind::Blocking),
            _ => None,
        }
    }

    pub(crate) fn to_proto(self) -> v1::TaskKind {
        match self {
            Kind::Task => v1::TaskKind::Task,
            Kind::Local => v1::TaskKind::Local,
            Kind::BlockOn => v1::TaskKind::BlockOn,
            Kind::Blocking => v1::TaskKind::Blocking,
        }
    }

    /// Blocking tasks may hold their thread as long as they like: that is what the
    /// blocking pool is for, so their "polls" are never stalls.
    pub(crate) fn can_stall(self) -> bool {
        self != Kind::Blocking
    }
}

/// Facts fixed at spawn. `id` and `kind` first: the poll path reads them.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Identity {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    pub(crate) name: Option<Box<str>>,
    pub(crate) file: &'static str,
    pub(crate) line: u32,
    pub(crate) column: u32,
    pub(crate) parent: u64,
    pub(crate) spawned_ns: u64,
    pub(crate) spawn_thread: u32,
}

#[cfg(test)]
impl Identity {
    /// A plain task spawned at `f.rs:1:1`, for tests.
    pub(crate) fn for_test(id: u64) -> Self {
        Self {
            id,
            kind: Kind::Task,
            name: None,
            file: "f.rs",
            line: 1,
            column: 1,
            parent: 0,
            spawned_ns: 0,
            spawn_thread: 0,
        }
    }
}

/// How a task ended, decided at its end from the facts recorded on the task as they
/// happened: on the tracing route when its span closes, on the hooks route where tokio
/// runs the termination hook (see `outcome.rs`).
#[derive(Debug, Clone)]
pub(crate) struct End {
    pub(crate) at_ns: u64,
    pub(crate) outcome: v1::Outcome,
    pub(crate) thread: u32,
    /// Set when the outcome is a panic.
    pub(crate) panic: Option<Panic>,
}

/// A panic out of a task's poll.
#[derive(Debug, Clone)]
pub(crate) struct Panic {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
    /// How long the panic hooks (the default one prints the message and, with
    /// `RUST_BACKTRACE`, symbolizes a backtrace) held the thread: part of the panic, not a
    /// stall of the task's code, so it is taken out of the poll's duration.
    pub(crate) held_ns: u64,
}

/// One task's live state.
///
/// Laid out for the poll path: everything a poll writes sits in the first cache line,
/// followed by the identity it reads (id and kind first), so a poll of a task whose cell
/// is cold costs two cache lines plus its histogram bucket's, not one per field.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct TaskCell {
    polls: AtomicU64,
    busy_ns: AtomicU64,
    max_poll_ns: AtomicU64,
    last_poll_start_ns: AtomicU64,
    last_poll_end_ns: AtomicU64,
    /// How long after this task's own previous poll returned its latest enter came, on the
    /// same thread with nothing polled in between (`u64::MAX` otherwise): tokio drops the
    /// future of a task that just completed right after that last poll.
    reentry_gap_ns: AtomicU64,
    /// Thread number polling it now, 0 when not running.
    running_thread: AtomicU32,
    /// Marked on every change, taken by the aggregator when it publishes.
    dirty: ChangeFlag,
    /// The aggregator knows this task (its spawn event got through).
    announced: AtomicBool,
    /// `identity.kind.can_stall()`, kept in this cache line for the poll path.
    can_stall: bool,
    pub(crate) identity: Identity,
    histogram: [AtomicU32; histogram::BUCKETS],
    // Waker tracking (written from any thread).
    wakes: AtomicU64,
    self_wakes: AtomicU64,
    wakers: AtomicI64,
    /// A waker operation came during a dump or its aftermath: `wakers` may be off by one
    /// (`TaskStats.wakers_unsure`, `tasks/lifecycle.rs`).
    wakers_unsure: AtomicBool,
    /// When a dump first touched its wakers, nothing held one and it was idle: lost before
    /// the dump, which cannot change that (`TaskStats.lost_before_dump`).
    lost_before_dump: AtomicBool,
    /// Probe time of the first wake since the last poll started, 0 when not scheduled.
    scheduled_since_ns: AtomicU64,
    scheduled_ns: AtomicU64,
    /// `wakers` when the latest poll started: for a task whose last "poll" is the drop of
    /// its future, this is the count it had while waiting.
    wakers_at_poll_start: AtomicI64,
    /// Whether it had been woken when the latest poll started (same reason as above).
    scheduled_at_poll_start: AtomicBool,
    /// The panic that unwound out of one of its polls, recorded at that poll's exit (the
    /// span itself may close much later, when spans created inside it are gone).
    panic: OnceLock<Panic>,
    /// Polls not counted as such: tokio enters a task's span to drop its future, which looks
    /// like one more poll; the close corrects for it once.
    corrected: AtomicU8,
    end: OnceLock<End>,
    /// What its latest poll was left waiting on (`waits.rs`), written by that poll.
    wait: TaskWait,
}

/// Adds to a field that only the polling thread writes.
#[inline]
fn bump(field: &AtomicU64, by: u64) {
    field.store(
        field.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

impl TaskCell {
    pub(crate) fn new(identity: Identity) -> Self {
        Self {
            can_stall: identity.kind.can_stall(),
            identity,
            polls: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            max_poll_ns: AtomicU64::new(0),
            last_poll_start_ns: AtomicU64::new(0),
            last_poll_end_ns: AtomicU64::new(0),
            running_thread: AtomicU32::new(0),
            histogram: [const { AtomicU32::new(0) }; histogram::BUCKETS],
            wakes: AtomicU64::new(0),
            self_wakes: AtomicU64::new(0),
            wakers: AtomicI64::new(0),
            wakers_unsure: AtomicBool::new(false),
            lost_before_dump: AtomicBool::new(false),
            scheduled_since_ns: AtomicU64::new(0),
            scheduled_ns: AtomicU64::new(0),
            wakers_at_poll_start: AtomicI64::new(0),
            scheduled_at_poll_start: AtomicBool::new(false),
            dirty: ChangeFlag::new_marked(),
            announced: AtomicBool::new(false),
            reentry_gap_ns: AtomicU64::new(u64::MAX),
            panic: OnceLock::new(),
            corrected: AtomicU8::new(0),
            end: OnceLock::new(),
            wait: TaskWait::default(),
        }
    }

    /// Drops what the cell owns (its task's name, panic and end), leaving it owning nothing:
    /// what a cell waiting for reuse holds (`recycle.rs`, which writes a new task over it
    /// without a drop). Every field that owns memory must be emptied here.
    pub(crate) fn release_owned(&mut self) {
        self.identity.name = None;
        self.panic.take();
        self.end.take();
    }

    /// Whether a long poll of this task is a stall (see [`Kind::can_stall`]).
    #[inline]
    pub(crate) fn can_stall(&self) -> bool {
        self.can_stall
    }

    /// Asks the CPU to fetch the histogram's cache lines while the poll runs: the poll's
    /// end writes one of them, and for a task not polled lately that write would otherwise
    /// wait for memory.
    #[inline]
    pub(crate) fn prefetch_histogram(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let start = self.histogram.as_ptr().cast::<i8>();
            let bytes = std::mem::size_of_val(&self.histogram);
            for offset in (0..bytes).step_by(64) {
                // SAFETY: a prefetch never faults, and the address is inside `self` anyway.
                #[allow(unused_unsafe)]
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset));
                }
            }
        }
    }

    /// A poll starts on `thread`, `reentry_gap_ns` after its own previous one returned there.
    #[inline]
    pub(crate) fn poll_started(
        &self,
        now_ns: u64,
        thread: u32,
        reentry_gap_ns: u64,
        track_wakers: bool,
    ) {
        self.reentry_gap_ns.store(reentry_gap_ns, Ordering::Relaxed);
        self.last_poll_start_ns.store(now_ns, Ordering::Relaxed);
        self.running_thread.store(thread, Ordering::Relaxed);
        if track_wakers {
            let since = self.scheduled_since_ns.swap(0, Ordering::Relaxed);
            if since != 0 && since < now_ns {
                self.scheduled_ns
                    .fetch_add(now_ns - since, Ordering::Relaxed);
            }
            self.scheduled_at_poll_start
                .store(since != 0, Ordering::Relaxed);
            self.wakers_at_poll_start
                .store(self.wakers.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.dirty.mark();
    }

    /// The poll that started at `started_ns` returns.
    #[inline]
    pub(crate) fn poll_ended(&self, started_ns: u64, now_ns: u64) -> u64 {
        let duration = now_ns.saturating_sub(started_ns);
        bump(&self.polls, 1);
        bump(&self.busy_ns, duration);
        if duration > self.max_poll_ns.load(Ordering::Relaxed) {
            self.max_poll_ns.store(duration, Ordering::Relaxed);
        }
        let bucket = &self.histogram[histogram::bucket_of(duration)];
        bucket.store(
            bucket.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        self.last_poll_end_ns.store(now_ns, Ordering::Relaxed);
        self.running_thread.store(0, Ordering::Relaxed);
        self.dirty.mark();
        duration
    }

    /// Takes back the last "poll", which was tokio entering the span to drop the future.
    pub(crate) fn uncount_drop(&self) {
        if self.corrected.swap(1, Ordering::Relaxed) != 0 {
            return;
        }
        let start = self.last_poll_start_ns.load(Ordering::Relaxed);
        let end = self.last_poll_end_ns.load(Ordering::Relaxed);
        if self.polls.load(Ordering::Relaxed) == 0 || end < start {
            return;
        }
        let duration = end - start;
        self.polls.fetch_sub(1, Ordering::Relaxed);
        self.busy_ns.fetch_sub(
            duration.min(self.busy_ns.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        let bucket = &self.histogram[histogram::bucket_of(duration)];
        let count = bucket.load(Ordering::Relaxed);
        bucket.store(count.saturating_sub(1), Ordering::Relaxed);
    }

    /// A waker event (waker tracking only).
    pub(crate) fn waker_op(&self, op: WakerOp, now_ns: u64, from: WakeFrom) {
        if from == WakeFrom::Dump && !self.wakers_unsure.load(Ordering::Relaxed) {
            // The verdict as it stood before the dump's first touch, kept.
            if self.is_lost_now() {
                self.lost_before_dump.store(true, Ordering::Relaxed);
            }
            self.wakers_unsure.store(true, Ordering::Relaxed);
        }
        match op {
            WakerOp::Clone => {
                self.wakers.fetch_add(1, Ordering::Relaxed);
            }
            WakerOp::Drop => {
                self.wakers.fetch_sub(1, Ordering::Relaxed);
            }
            WakerOp::Wake | WakerOp::WakeByRef => {
                // Scheduled first, then one waker fewer: a reader never sees a woken task
                // as idle with no waker in between.
                let _ = self.scheduled_since_ns.compare_exchange(
                    0,
                    now_ns,
                    Ordering::Release,
                    Ordering::Relaxed,
                );
                if op == WakerOp::Wake {
                    self.wakers.fetch_sub(1, Ordering::Release);
                }
                if from != WakeFrom::Dump {
                    self.wakes.fetch_add(1, Ordering::Relaxed);
                }
                if from == WakeFrom::OwnPoll {
                    self.self_wakes.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.dirty.mark();
    }

    /// Polled, not polled now, not woken since, and not one waker: nothing can wake it.
    fn is_lost_now(&self) -> bool {
        self.polls.load(Ordering::Relaxed) > 0
            && self.running_thread.load(Ordering::Relaxed) == 0
            && self.wakers.load(Ordering::Acquire) == 0
            && self.scheduled_since_ns.load(Ordering::Relaxed) == 0
    }

    /// See the field.
    pub(crate) fn wakers_unsure(&self) -> bool {
        self.wakers_unsure.load(Ordering::Relaxed)
    }

    /// See the field.
    pub(crate) fn reentry_gap_ns(&self) -> u64 {
        self.reentry_gap_ns.load(Ordering::Relaxed)
    }

    pub(crate) fn record_panic(&self, panic: Panic) {
        let _ = self.panic.set(panic);
    }

    pub(crate) fn panic(&self) -> Option<&Panic> {
        self.panic.get()
    }

    pub(crate) fn set_end(&self, end: End) {
        let _ = self.end.set(end);
        self.dirty.mark();
    }

    /// This task's poll, running now, is being left waiting on `target`.
    pub(crate) fn record_wait(&self, target: WaitTarget, now_ns: u64) {
        self.wait
            .set(target, now_ns, self.polls.load(Ordering::Relaxed));
    }

    /// What the task waits on and since when: recorded by its latest poll, which has
    /// returned (a running task waits on nothing).
    pub(crate) fn current_wait(&self) -> Option<(WaitTarget, u64)> {
        if self.is_running() || self.end.get().is_some() {
            return None;
        }
        self.wait
            .read(self.last_poll_start_ns.load(Ordering::Relaxed))
    }

    pub(crate) fn end(&self) -> Option<&End> {
        self.end.get()
    }

    pub(crate) fn is_running(&self) -> bool {
        self.running_thread.load(Ordering::Relaxed) != 0
    }

    /// Probe time its latest poll returned (0 before the first).
    pub(crate) fn last_poll_end_ns(&self) -> u64 {
        self.last_poll_end_ns.load(Ordering::Relaxed)
    }

    pub(crate) fn take_dirty(&self) -> bool {
        self.dirty.take()
    }

    pub(crate) fn mark_announced(&self) {
        self.announced.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_announced(&self) -> bool {
        self.announced.load(Ordering::Relaxed)
    }

    /// The task's statistics now. `at_end`: the task has ended; report the state and
    /// waker count it had while it waited, before its future was dropped.
    pub(crate) fn stats(&self, at_end: bool) -> v1::TaskStats {
        let running_thread = self.running_thread.load(Ordering::Relaxed);
        let scheduled = self.scheduled_since_ns.load(Ordering::Relaxed) != 0;
        let state = if at_end {
            if self.scheduled_at_poll_start.load(Ordering::Relaxed) {
                v1::TaskState::Scheduled
            } else {
                v1::TaskState::Idle
            }
        } else if running_thread != 0 {
            v1::TaskState::Running
        } else if scheduled {
            v1::TaskState::Scheduled
        } else {
            v1::TaskState::Idle
        };
        let wakers = if at_end {
            self.wakers_at_poll_start.load(Ordering::Relaxed)
        } else {
            self.wakers.load(Ordering::Relaxed)
        };
        v1::TaskStats {
            id: self.identity.id,
            state: state as i32,
            polls: self.polls.load(Ordering::Relaxed),
            busy_ns: self.busy_ns.load(Ordering::Relaxed),
            scheduled_ns: self.scheduled_ns.load(Ordering::Relaxed),
            wakes: self.wakes.load(Ordering::Relaxed),
            self_wakes: self.self_wakes.load(Ordering::Relaxed),
            wakers,
            wakers_unsure: self.wakers_unsure(),
            lost_before_dump: self.lost_before_dump.load(Ordering::Relaxed),
            running_thread,
            last_poll_start_ns: self.last_poll_start_ns.load(Ordering::Relaxed),
            last_poll_end_ns: self.last_poll_end_ns.load(Ordering::Relaxed),
            poll_histogram: self
                .histogram
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            max_poll_ns: self.max_poll_ns.load(Ordering::Relaxed),
        }
    }

    /// The task's polls, busy time and longest poll (ns): what a task folded into its
    /// spawn site's tally adds to it, without building a whole [`v1::TaskStats`].
    pub(crate) fn poll_totals(&self) -> (u64, u64, u64) {
        (
            self.polls.load(Ordering::Relaxed),
            self.busy_ns.load(Ordering::Relaxed),
            self.max_poll_ns.load(Ordering::Relaxed),
        )
    }

    /// Adds this task's poll histogram to `totals` and returns its busy time (ns): what
    /// the metrics' per-site totals need, without building a whole [`v1::TaskStats`].
    pub(crate) fn add_polls_to(&self, totals: &mut [u64; histogram::BUCKETS]) -> u64 {
        for (total, bucket) in totals.iter_mut().zip(&self.histogram) {
            *total += u64::from(bucket.load(Ordering::Relaxed));
        }
        self.busy_ns.load(Ordering::Relaxed)
    }

    pub(crate) fn spawned(&self) -> v1::TaskSpawned {
        let id = &self.identity;
        v1::TaskSpawned {
            id: id.id,
            name: id.name.as_deref().unwrap_or_default().to_owned(),
            kind: id.kind.to_proto() as i32,
            location: Some(v1::Location {
                file: id.file.to_string(),
                line: id.line,
                column: id.column,
            }),
            parent_id: id.parent,
            spawned_ns: id.spawned_ns,
            spawn_thread: id.spawn_thread,
            runtime_id: 0,
        }
    }
}

/// Who a waker operation came from, for the wake statistics (the waker count and the
/// task's state take every operation alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WakeFrom {
    /// The task's own poll (a self-wake, e.g. `yield_now`).
    OwnPoll,
    /// Another task or thread.
    Elsewhere,
    /// A task dump: its re-poll of the task, or the wake tokio owes the task after one.
    /// Not the app's wake, so not counted as one.
    Dump,
}

/// What tokio's `tokio::task::waker` events say happened to a waker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WakerOp {
    Clone,
    Drop,
    Wake,
    WakeByRef,
}

impl WakerOp {
    pub(crate) fn from_tokio(op: &str) -> Option<Self> {
        match op {
            "waker.clone" => Some(WakerOp::Clone),
            "waker.drop" => Some(WakerOp::Drop),
            "waker.wake" => Some(WakerOp::Wake),
            "waker.wake_by_ref" => Some(WakerOp::WakeByRef),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell() -> TaskCell {
        TaskCell::new(Identity {
            id: 7,
            name: None,
            kind: Kind::Task,
            file: "src/main.rs",
            line: 3,
            column: 5,
            parent: 0,
            spawned_ns: 1,
            spawn_thread: 1,
        })
    }

    #[test]
    fn polls_add_up_and_land_in_the_histogram() {
        let cell = cell();
        cell.poll_started(100, 1, u64::MAX, false);
        assert_eq!(cell.stats(false).state, v1::TaskState::Running as i32);
        cell.poll_ended(100, 2_100);
        cell.poll_started(5_000, 1, u64::MAX, false);
        cell.poll_ended(5_000, 205_000_000);
        let stats = cell.stats(false);
        assert_eq!(stats.polls, 2);
        assert_eq!(stats.busy_ns, 2_000 + 204_995_000);
        assert_eq!(stats.max_poll_ns, 204_995_000);
        assert_eq!(stats.poll_histogram.iter().sum::<u32>(), 2);
        assert_eq!(stats.state, v1::TaskState::Idle as i32);
    }

    #[test]
    fn the_drop_of_the_future_is_not_counted_as_a_poll() {
        let cell = cell();
        cell.poll_started(100, 1, u64::MAX, false);
        cell.poll_ended(100, 1_100);
        cell.poll_started(2_000, 1, 900, false);
        cell.poll_ended(2_000, 2_500);
        cell.uncount_drop();
        cell.uncount_drop();
        let stats = cell.stats(true);
        assert_eq!(stats.polls, 1);
        assert_eq!(stats.busy_ns, 1_000);
        assert_eq!(stats.poll_histogram.iter().sum::<u32>(), 1);
    }

    /// A dump's waker operations count, mark the count unsure, and its wakes are not the
    /// app's.
    #[test]
    fn a_dumps_waker_operations_make_the_count_unsure() {
        let cell = cell();
        cell.waker_op(WakerOp::Clone, 10, WakeFrom::Elsewhere);
        assert!(!cell.stats(false).wakers_unsure);
        cell.waker_op(WakerOp::Clone, 20, WakeFrom::Dump);
        cell.waker_op(WakerOp::Wake, 30, WakeFrom::Dump);
        let stats = cell.stats(false);
        assert_eq!((stats.wakers, stats.wakes), (1, 0));
        assert!(stats.wakers_unsure);
        assert!(!stats.lost_before_dump, "it held a waker");
    }

    /// A task that held no waker when a dump first woke it was lost before the dump, and
    /// stays so whatever the dump's wake does to its count and state.
    #[test]
    fn a_task_lost_before_a_dump_stays_lost() {
        let cell = cell();
        cell.poll_started(100, 1, u64::MAX, true);
        cell.poll_ended(100, 200);
        cell.waker_op(WakerOp::WakeByRef, 300, WakeFrom::Dump);
        cell.waker_op(WakerOp::Drop, 310, WakeFrom::Dump);
        let stats = cell.stats(false);
        assert!(stats.lost_before_dump && stats.wakers_unsure, "{stats:?}");
        assert_eq!(stats.wakers, -1);
    }

    #[test]
    fn wakes_schedule_the_task_until_its_next_poll() {
        let cell = cell();
        cell.waker_op(WakerOp::Clone, 10, WakeFrom::Elsewhere);
        assert_eq!(cell.stats(false).wakers, 1);
        cell.waker_op(WakerOp::Wake, 20, WakeFrom::Elsewhere);
        let stats = cell.stats(false);
        assert_eq!((stats.wakers, stats.wakes), (0, 1));
        assert_eq!(stats.state, v1::TaskState::Scheduled as i32);
        cell.poll_started(50, 1, u64::MAX, true);
        cell.poll_ended(50, 60);
        let stats = cell.stats(false);
        assert_eq!(stats.scheduled_ns, 30);
        assert_eq!(stats.state, v1::TaskState::Idle as i32);
    }
}

#[cfg(test)]
mod layout {
    use super::*;

    #[test]
    fn what_a_poll_writes_shares_one_cache_line_with_the_task_id() {
        let cell = TaskCell::new(Identity::for_test(1));
        let base = &cell as *const TaskCell as usize;
        assert_eq!(base % 64, 0);
        let offset = |field: *const u8| field as usize - base;
        assert!(offset((&cell.announced as *const AtomicBool).cast()) < 64);
        assert!(offset((&cell.identity.id as *const u64).cast()) < 64);
        assert!(offset((&cell.can_stall as *const bool).cast()) < 64);
        assert!(offset((&cell.identity.kind as *const Kind).cast()) < 128);
    }
}
