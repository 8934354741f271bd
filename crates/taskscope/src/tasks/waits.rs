//! What a task waits on, and who holds the locks and permits it waits for: the facts the
//! wait-for graph is folded from (`aggregate/wait_graph.rs`).
//!
//! Two kinds of facts, kept apart because they are written differently:
//!
//! * **A task's wait** is written into its own cell ([`TaskWait`]) by the poll that was
//!   left waiting, as a target and the time: a later poll of the task makes it stale
//!   without any write, because the aggregator only believes a wait recorded after the
//!   task's latest poll started. Nothing is sent, and a task polled a million times while
//!   waiting costs two stores a poll.
//! * **A resource's holders** change from whichever thread takes or gives back a guard or a
//!   permit, and only their order makes sense of them (tokio reports a released `Mutex`
//!   after the next holder may already have taken it). They travel as [`ResourceEvent`]s
//!   through one bounded queue to the aggregator, which keeps every resource's holders;
//!   a full queue drops the fact and counts it (`Drops.wait_events`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Facts in flight to the aggregator at most. A lock taken and given back is two.
const QUEUE: usize = 16 * 1024;

/// A [`TaskWait`] target naming a task (its `JoinHandle` is awaited) rather than a resource.
const JOIN: u64 = 1 << 63;

/// What a task's latest poll was left waiting on, written by that poll.
#[derive(Debug, Default)]
pub(crate) struct TaskWait {
    /// A resource id, or a task id tagged with [`JOIN`]; 0 for none.
    target: AtomicU64,
    /// When the poll recorded it.
    at_ns: AtomicU64,
    /// When the task first waited there, across the polls that left it waiting there.
    since_ns: AtomicU64,
    /// The number of the poll that recorded it (the task's polls completed before it).
    poll: AtomicU64,
}

/// What a wait is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitTarget {
    Resource(u64),
    /// The task whose `JoinHandle` is awaited.
    Join(u64),
}

impl TaskWait {
    /// Poll number `poll` of the task is left waiting on `target` at `now_ns`. Only the
    /// task's own poll writes, so plain loads and stores suffice; readers take the fields as
    /// a hint checked against the task's latest poll start. The wait goes on (keeps its
    /// start) when this poll or the one before it waited on the same target.
    pub(crate) fn set(&self, target: WaitTarget, now_ns: u64, poll: u64) {
        let raw = match target {
            WaitTarget::Resource(id) => id & !JOIN,
            WaitTarget::Join(task) => task | JOIN,
        };
        let previous = self.poll.load(Ordering::Relaxed);
        let goes_on = self.target.load(Ordering::Relaxed) == raw
            && self.at_ns.load(Ordering::Relaxed) != 0
            && poll.saturating_sub(previous) <= 1;
        if !goes_on {
            self.target.store(raw, Ordering::Relaxed);
            self.since_ns.store(now_ns, Ordering::Relaxed);
        }
        self.poll.store(poll, Ordering::Relaxed);
        self.at_ns.store(now_ns, Ordering::Release);
    }

    /// The wait, if one was recorded after `poll_started_ns` (the start of the task's
    /// latest poll): `(target, since)`.
    pub(crate) fn read(&self, poll_started_ns: u64) -> Option<(WaitTarget, u64)> {
        let at = self.at_ns.load(Ordering::Acquire);
        if at == 0 || at < poll_started_ns {
            return None;
        }
        let raw = self.target.load(Ordering::Relaxed);
        let since = self.since_ns.load(Ordering::Relaxed).min(at);
        let target = match raw {
            0 => return None,
            raw if raw & JOIN != 0 => WaitTarget::Join(raw & !JOIN),
            raw => WaitTarget::Resource(raw),
        };
        Some((target, since))
    }
}

/// The kinds of tokio resources whose holders are tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourceKind {
    Mutex,
    RwLock,
    Semaphore,
}

impl ResourceKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Mutex => "Mutex",
            Self::RwLock => "RwLock",
            Self::Semaphore => "Semaphore",
        }
    }
}

/// A change to a resource, in the order its thread saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourceEvent {
    Created {
        id: u64,
        kind: ResourceKind,
        file: &'static str,
        line: u32,
        column: u32,
    },
    /// Permits a semaphore starts with.
    Capacity {
        id: u64,
        permits: u64,
    },
    /// `task` took a guard or a permit.
    Acquired {
        id: u64,
        task: u64,
        at_ns: u64,
    },
    /// `task` gave one back (0 when no task was polling).
    Released {
        id: u64,
        task: u64,
    },
    Closed {
        id: u64,
    },
}

/// The queue of [`ResourceEvent`]s and the resource ids.
pub(crate) struct ResourceEvents {
    sender: SyncSender<ResourceEvent>,
    /// Taken once by the aggregator.
    receiver: Mutex<Option<Receiver<ResourceEvent>>>,
    next_id: AtomicU64,
}

impl Default for ResourceEvents {
    fn default() -> Self {
        let (sender, receiver) = sync_channel(QUEUE);
        Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
            next_id: AtomicU64::new(1),
        }
    }
}

impl ResourceEvents {
    /// A new resource's id, never 0 and never reused.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) & !JOIN
    }

    /// Queues `event` without ever blocking; `false` when the queue is full (the caller
    /// counts the drop).
    pub(crate) fn send(&self, event: ResourceEvent) -> bool {
        !matches!(
            self.sender.try_send(event),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_))
        )
    }

    /// The aggregator's end of the queue (once).
    pub(crate) fn take_receiver(&self) -> Option<Receiver<ResourceEvent>> {
        self.receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_only_believed_when_recorded_during_the_latest_poll() {
        let wait = TaskWait::default();
        assert_eq!(wait.read(0), None);
        wait.set(WaitTarget::Resource(7), 100, 1);
        assert_eq!(wait.read(90), Some((WaitTarget::Resource(7), 100)));
        // A later poll started and left no wait: stale.
        assert_eq!(wait.read(150), None);
        // The next poll waiting there again keeps the start; another target starts anew.
        wait.set(WaitTarget::Resource(7), 200, 2);
        assert_eq!(wait.read(190), Some((WaitTarget::Resource(7), 100)));
        wait.set(WaitTarget::Join(3), 300, 3);
        assert_eq!(wait.read(290), Some((WaitTarget::Join(3), 300)));
        // Back on the same target after polls that waited elsewhere (or nowhere): anew.
        wait.set(WaitTarget::Join(3), 500, 6);
        assert_eq!(wait.read(490), Some((WaitTarget::Join(3), 500)));
    }
}
