//! One task as the model keeps it: what it is, its latest numbers, how it ended.
//!
//! Kept compact because a service can have 100k of them: strings that repeat (spawn
//! locations) are interned by the model, the rare ones (names, panic messages) are boxed
//! and absent when empty, and the poll histogram is only allocated once a task has one.

use taskscope_api::v1;

use super::LocationId;

/// What kind of task this is, as tokio spawned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `tokio::spawn` and friends.
    Task,
    /// `spawn_local` on a `LocalSet`.
    Local,
    /// A runtime's `block_on` future (e.g. the `#[tokio::main]` body).
    BlockOn,
    /// `spawn_blocking`: runs on the blocking pool, never a stall, never cancelled at shutdown.
    Blocking,
    /// A probe newer than this client, or one that could not tell.
    Unknown,
}

impl Kind {
    pub(crate) fn from_wire(kind: i32) -> Self {
        match v1::TaskKind::try_from(kind) {
            Ok(v1::TaskKind::Task) => Self::Task,
            Ok(v1::TaskKind::Local) => Self::Local,
            Ok(v1::TaskKind::BlockOn) => Self::BlockOn,
            Ok(v1::TaskKind::Blocking) => Self::Blocking,
            Ok(v1::TaskKind::Unspecified) | Err(_) => Self::Unknown,
        }
    }
}

/// Where a live task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// No statistics yet.
    Unknown,
    /// Being polled now.
    Running,
    /// Woken, waiting for a worker.
    Scheduled,
    /// Waiting for a wake.
    Idle,
}

impl State {
    fn from_wire(state: i32) -> Self {
        match v1::TaskState::try_from(state) {
            Ok(v1::TaskState::Running) => Self::Running,
            Ok(v1::TaskState::Scheduled) => Self::Scheduled,
            Ok(v1::TaskState::Idle) => Self::Idle,
            Ok(v1::TaskState::Unspecified) | Err(_) => Self::Unknown,
        }
    }
}

/// How a task ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Its future returned `Ready`.
    Completed,
    /// Dropped while its runtime kept running: abort, `JoinSet` drop.
    Cancelled,
    /// Still pending when its runtime shut down.
    CancelledAtShutdown,
    /// Its poll panicked.
    Panicked {
        /// The panic payload, when it was a string.
        message: Box<str>,
        /// `file:line:col` of the panic, when known.
        location: Option<Box<str>>,
        /// How long the panic hooks held the thread (printing the message, symbolizing a
        /// backtrace): part of the panic, never a stall.
        held_ns: u64,
    },
    /// A newer probe's outcome this client does not know.
    Unknown,
}

impl Outcome {
    fn from_wire(ended: &v1::TaskEnded) -> Self {
        match v1::Outcome::try_from(ended.outcome) {
            Ok(v1::Outcome::Completed) => Self::Completed,
            Ok(v1::Outcome::Cancelled) => Self::Cancelled,
            Ok(v1::Outcome::CancelledAtShutdown) => Self::CancelledAtShutdown,
            Ok(v1::Outcome::Panicked) => Self::Panicked {
                message: ended.panic_message.as_str().into(),
                location: non_empty(&ended.panic_location),
                held_ns: ended.panic_held_ns,
            },
            Ok(v1::Outcome::Unspecified) | Err(_) => Self::Unknown,
        }
    }
}

/// Latest statistics of a task (totals, as the probe sends them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) state: State,
    pub(crate) polls: u64,
    pub(crate) busy_ns: u64,
    pub(crate) scheduled_ns: u64,
    pub(crate) wakes: u64,
    pub(crate) self_wakes: u64,
    /// Live wakers; negative means the probe's count went wrong, so it proves nothing.
    pub(crate) wakers: i64,
    /// A task dump may have moved `wakers` by one, so it proves nothing either.
    pub(crate) wakers_unsure: bool,
    /// Nothing held a waker when a dump first touched them: lost, whatever came after.
    pub(crate) lost_before_dump: bool,
    /// Thread number polling it, when running.
    pub(crate) running_thread: u32,
    pub(crate) last_poll_start_ns: u64,
    pub(crate) last_poll_end_ns: u64,
    pub(crate) max_poll_ns: u64,
    pub(crate) poll_histogram: Option<Box<[u32]>>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            state: State::Unknown,
            polls: 0,
            busy_ns: 0,
            scheduled_ns: 0,
            wakes: 0,
            self_wakes: 0,
            wakers: 0,
            wakers_unsure: false,
            lost_before_dump: false,
            running_thread: 0,
            last_poll_start_ns: 0,
            last_poll_end_ns: 0,
            max_poll_ns: 0,
            poll_histogram: None,
        }
    }
}

impl Stats {
    pub(crate) fn from_wire(stats: &v1::TaskStats) -> Self {
        Self {
            state: State::from_wire(stats.state),
            polls: stats.polls,
            busy_ns: stats.busy_ns,
            scheduled_ns: stats.scheduled_ns,
            wakes: stats.wakes,
            self_wakes: stats.self_wakes,
            wakers: stats.wakers,
            wakers_unsure: stats.wakers_unsure,
            lost_before_dump: stats.lost_before_dump,
            running_thread: stats.running_thread,
            last_poll_start_ns: stats.last_poll_start_ns,
            last_poll_end_ns: stats.last_poll_end_ns,
            max_poll_ns: stats.max_poll_ns,
            poll_histogram: (!stats.poll_histogram.is_empty())
                .then(|| stats.poll_histogram.clone().into_boxed_slice()),
        }
    }
}

/// How and when a task ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct End {
    pub(crate) ended_ns: u64,
    pub(crate) outcome: Outcome,
    /// Thread number it ended on.
    pub(crate) thread: u32,
}

impl End {
    pub(crate) fn from_wire(ended: &v1::TaskEnded) -> Self {
        Self {
            ended_ns: ended.ended_ns,
            outcome: Outcome::from_wire(ended),
            thread: ended.thread,
        }
    }
}

/// One task.
#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    pub(crate) kind: Kind,
    pub(crate) location: LocationId,
    /// 0 for a top-level task.
    pub(crate) parent_id: u64,
    pub(crate) spawned_ns: u64,
    /// Thread number of the spawning thread.
    pub(crate) spawn_thread: u32,
    pub(crate) runtime_id: u64,
    pub(crate) stats: Stats,
    /// `None` while it lives. Boxed: most tasks of a busy service are alive and the end is
    /// only needed once.
    pub(crate) end: Option<Box<End>>,
}

impl Task {
    pub(crate) fn from_wire(spawned: &v1::TaskSpawned, location: LocationId) -> Self {
        Self {
            id: spawned.id,
            name: non_empty(&spawned.name),
            kind: Kind::from_wire(spawned.kind),
            location,
            parent_id: spawned.parent_id,
            spawned_ns: spawned.spawned_ns,
            spawn_thread: spawned.spawn_thread,
            runtime_id: spawned.runtime_id,
            stats: Stats::default(),
            end: None,
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        self.end.is_none()
    }

    pub(crate) fn outcome(&self) -> Option<&Outcome> {
        self.end.as_ref().map(|end| &end.outcome)
    }
}

fn non_empty(text: &str) -> Option<Box<str>> {
    (!text.is_empty()).then(|| text.into())
}
