//! Stalls in a `block_on` body that was already running when the probe started: the body
//! of `#[tokio::main]` (or `#[tokio::test]`) that calls `taskscope::init()`.
//!
//! tokio began polling that body before any subscriber existed, so no span and no hook
//! marks its polls. What the probe does know is its thread: the one `init()` was called
//! on. From then on, every watchdog tick takes a cheap look at that thread from outside
//! (`thread_state.rs`: the system call it is blocked in, and how often it has blocked)
//! and asks one question: has it been away from the runtime's park all along since the
//! last look? A thread parked by tokio waits in a futex or in epoll; a body stuck in
//! `std::thread::sleep`, a blocking read or a computation does not. A run that has stayed
//! away longer than the stall threshold is reported as a stall of the body, through the
//! same events (and the same stack samples) as a stall the thread slots reveal.
//!
//! Every run (from the first look that finds the thread busy to the last) also goes into
//! the thread's flight-recorder history as a poll of the body, so that the Timeline, the
//! activity summaries and each stall's window show the body busy where no hook could say
//! so (`tasks/flight.rs`, `Flight::record_from_outside`).
//!
//! The app's thread is never signalled while it is parked: stacks are only sampled once
//! a stall is reported. What this cannot tell, and `#[taskscope::main]` can
//! (`docs/guide.md`, "Routes"):
//!
//! * a body blocked in a futex or epoll of its own (a `std` mutex, a thread join, a sync
//!   channel) looks parked, so that stall is not seen;
//! * a body woken again and again without its thread ever blocking for a whole threshold
//!   looks like one long poll, and is reported as one stall;
//! * the start and end of a stall are known to a watchdog tick (1 to 25 ms), and the
//!   duration reported is the time between the first and the last look that found the
//!   thread busy (never more than the stall lasted).

use std::panic::Location;
use std::sync::{Arc, Mutex};

use crate::base::clock;
use crate::base::thread_state::{self, Syscall, ThreadState};
use crate::detect::running_stall::RunningStall;
use crate::detect::stall_stack;
use crate::tasks::cell::{Kind, TaskCell};
use crate::tasks::lifecycle;
use crate::tasks::ring::{Event, EventKind};
use crate::tasks::shared::Shared;
use crate::tasks::threads;
use crate::tasks::threads::{OwnTime, Polling, ThreadSlot};

/// Bodies `init()` asked to watch, not yet taken up by the watchdog.
static REQUESTED: Mutex<Vec<Request>> = Mutex::new(Vec::new());

/// A body to watch, as `init()` saw it.
struct Request {
    slot: Arc<ThreadSlot>,
    at: &'static Location<'static>,
    first: Look,
}

/// Whether the calling thread runs code tokio started before the probe could see it:
/// inside a runtime, with no poll the probe sees in progress on this thread (a runtime
/// built after the probe started has its `block_on` seen through tokio's span). Without
/// `--cfg tokio_unstable` the probe sees no task at all and says so; the body is no
/// exception.
pub(crate) fn in_unseen_body() -> bool {
    cfg!(tokio_unstable)
        && tokio::runtime::Handle::try_current().is_ok()
        && threads::with_local(|local| local.current_task() == 0).unwrap_or(false)
}

/// Why the calling thread, in an unseen body, cannot be watched; `None` when it can: it
/// runs a `block_on` body (a task has an id) on a platform that tells what a thread does.
pub(crate) fn cannot_watch_this_thread() -> Option<&'static str> {
    if tokio::task::try_id().is_some() {
        Some("inside a spawned task, so the body that runs the runtime is on another thread")
    } else if thread_state::of_this_thread().is_none() {
        Some("on a platform without Linux's /proc/<tid>/syscall")
    } else {
        None
    }
}

/// Starts watching the calling thread, the thread of a body that is being polled right
/// now and that `init()` was called from at `at`. `false` when this platform cannot tell
/// what the thread is doing.
pub(crate) fn watch_this_thread(at: &'static Location<'static>) -> bool {
    let Some(slot) = threads::with_local(|local| local.thread_slot()) else {
        return false;
    };
    let Some(state) = thread_state::of_this_thread() else {
        return false;
    };
    let first = Look {
        state: ThreadState {
            // The body is being polled: on a CPU, whatever the read above was.
            syscall: Syscall::Running,
            ..state
        },
        generation: slot.generation(),
        at_ns: clock::now_ns(),
    };
    REQUESTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Request { slot, at, first });
    true
}

/// The bodies the watchdog watches.
#[derive(Default)]
pub(crate) struct Bodies {
    watched: Vec<Watched>,
}

impl Bodies {
    /// One look at every watched body (called every watchdog tick).
    pub(crate) fn scan(&mut self, shared: &Shared, capture: Option<&stall_stack::Capture>) {
        self.take_requests(shared);
        self.watched.retain_mut(|body| body.look(shared, capture));
    }

    fn take_requests(&mut self, shared: &Shared) {
        let requests = std::mem::take(&mut *REQUESTED.lock().unwrap_or_else(|e| e.into_inner()));
        for request in requests {
            if self
                .watched
                .iter()
                .any(|w| w.slot.number == request.slot.number)
            {
                continue; // init() called twice in one body
            }
            let Some(cell) = announce(shared, &request) else {
                continue; // the probe is stopped
            };
            let mut watched = Watched {
                run: None,
                last: request.first,
                slot: request.slot,
                cell,
            };
            watched.start_run(shared, request.first.at_ns);
            self.watched.push(watched);
        }
    }
}

/// The body as a task of its own: a `block_on` task named after its thread (`main`, or
/// the test's name under libtest), at the `init()` call.
fn announce(shared: &Shared, request: &Request) -> Option<Arc<TaskCell>> {
    let spawn = lifecycle::Spawn {
        id: crate::tasks::task_table::next_body_id(),
        kind: Kind::BlockOn,
        name: Some(request.slot.name.clone()),
        file: request.at.file(),
        line: request.at.line(),
        column: request.at.column(),
    };
    lifecycle::found_running(shared, spawn, request.slot.number, request.first.at_ns)
}

/// One look at the body's thread.
#[derive(Debug, Clone, Copy)]
struct Look {
    state: ThreadState,
    /// The thread slot's generation: a poll the probe sees started or ended when it moves.
    generation: u32,
    at_ns: u64,
}

impl Look {
    /// Away from the runtime's park, and not polling a task the slots already watch.
    fn is_busy(&self, slot: &ThreadSlot) -> bool {
        !self.state.syscall.may_be_runtime_park() && slot.read().is_none()
    }

    /// Whether the thread can have stayed busy all along from `earlier` to this look: no
    /// poll seen in between, and no block other than the one it may be in now (a thread
    /// that parked and came back in between has blocked once more than that).
    fn continues(&self, earlier: &Look) -> bool {
        let (Some(now), Some(then)) = (
            self.state.voluntary_switches,
            earlier.state.voluntary_switches,
        ) else {
            return false;
        };
        let allowed = match self.state.syscall {
            Syscall::Running => 0,
            Syscall::Blocked(_) | Syscall::Elsewhere => 1,
        };
        self.generation == earlier.generation && now.saturating_sub(then) <= allowed
    }
}

/// A stretch of time the body's thread has spent away from the runtime's park.
struct Run {
    started_ns: u64,
    last_busy_ns: u64,
    /// The thread's scheduler totals as the run was first seen.
    sched_at_start: Option<crate::base::schedstat::SchedStat>,
    /// Set once the run passed the threshold and was reported as a stall.
    stall: Option<RunningStall>,
}

impl Run {
    fn new(started_ns: u64, os_tid: u64) -> Self {
        Self {
            started_ns,
            last_busy_ns: started_ns,
            sched_at_start: crate::base::schedstat::of_thread(os_tid),
            stall: None,
        }
    }
}

/// A body being watched.
struct Watched {
    slot: Arc<ThreadSlot>,
    cell: Arc<TaskCell>,
    last: Look,
    run: Option<Run>,
}

impl Watched {
    /// Looks at the thread once; `false` once it is gone for good.
    fn look(&mut self, shared: &Shared, capture: Option<&stall_stack::Capture>) -> bool {
        // Known to the aggregator before any stall of it, when its spawn had to wait.
        let via = lifecycle::Via::Queue;
        lifecycle::announce_late(shared, &self.cell, via, || Some(self.cell.clone()));
        let state = if self.slot.has_exited() {
            None
        } else {
            thread_state::of_thread(self.slot.os_tid)
        };
        let Some(state) = state else {
            self.end_run(shared);
            return false;
        };
        let look = Look {
            state,
            generation: self.slot.generation(),
            at_ns: clock::now_ns(),
        };
        let busy = look.is_busy(&self.slot);
        let continued = busy && self.run.is_some() && look.continues(&self.last);
        self.last = look;
        if !continued {
            self.end_run(shared);
        }
        if busy {
            if self.run.is_none() {
                self.start_run(shared, look.at_ns);
            }
            if let Some(run) = self.run.as_mut() {
                run.last_busy_ns = look.at_ns;
            }
            self.follow(shared, capture);
        }
        true
    }

    /// A run starts, first seen at `at_ns`. It goes into the thread's flight-recorder
    /// history as the start of a poll of the body, so that the Timeline, the activity
    /// summaries and every stall's window show the body busy, as far as looks from
    /// outside can tell (from the look that first finds it busy to the last one that
    /// does).
    fn start_run(&mut self, shared: &Shared, at_ns: u64) {
        self.run = Some(Run::new(at_ns, self.slot.os_tid));
        self.record(shared, EventKind::PollStart, at_ns);
    }

    fn record(&self, shared: &Shared, kind: EventKind, at_ns: u64) {
        let event = Event {
            kind,
            task: self.cell.identity.id,
            at_ns,
            other: 0,
        };
        shared.flight.record_from_outside(&self.slot, event);
    }

    /// Reports the current run as a stall once it is past the threshold, refreshes it
    /// every publish interval, and samples its stack when due.
    fn follow(&mut self, shared: &Shared, capture: Option<&stall_stack::Capture>) {
        let Some(run) = self.run.as_mut() else { return };
        let now = run.last_busy_ns;
        if now.saturating_sub(run.started_ns) < shared.threshold_ns {
            return;
        }
        let polling = Polling {
            task: self.cell.identity.id,
            started_ns: run.started_ns,
        };
        (run.stall
            .get_or_insert_with(|| RunningStall::new(shared.threshold_ns)))
        .follow(shared, &self.slot, polling, now, capture);
    }

    /// The run is over: a stall, if it was one, ended at the last busy look.
    fn end_run(&mut self, shared: &Shared) {
        let Some(run) = self.run.take() else { return };
        // Before the stall's end: the window cut at that end holds the run's end too.
        self.record(shared, EventKind::PollEnd, run.last_busy_ns);
        if run.stall.is_some() {
            let sched = run.sched_at_start.and_then(|from| {
                Some(crate::base::schedstat::Window {
                    from_ns: run.started_ns,
                    from,
                    to: crate::base::schedstat::of_thread(self.slot.os_tid)?,
                })
            });
            shared.send_stall_end(
                self.cell.identity.id,
                self.slot.number,
                run.started_ns,
                run.last_busy_ns - run.started_ns,
                OwnTime::ZERO,
                sched,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(syscall: Syscall, voluntary_switches: u64, generation: u32) -> Look {
        Look {
            state: ThreadState {
                syscall,
                voluntary_switches: Some(voluntary_switches),
            },
            generation,
            at_ns: 0,
        }
    }

    const SLEEP: Syscall = Syscall::Blocked(230);

    #[test]
    fn a_thread_that_only_blocked_into_its_current_call_has_stayed_busy() {
        let running = look(Syscall::Running, 5, 2);
        assert!(look(Syscall::Running, 5, 2).continues(&running));
        assert!(look(SLEEP, 6, 2).continues(&running));
        // Still in the same sleep, or woken and asleep again once.
        assert!(look(SLEEP, 6, 2).continues(&look(SLEEP, 6, 2)));
        assert!(look(SLEEP, 7, 2).continues(&look(SLEEP, 6, 2)));
    }

    #[test]
    fn a_block_or_a_poll_in_between_ends_the_run() {
        let running = look(Syscall::Running, 5, 2);
        // Blocked (perhaps parked) and back on a CPU since.
        assert!(!look(Syscall::Running, 6, 2).continues(&running));
        // Blocked twice: once may have been the park.
        assert!(!look(SLEEP, 7, 2).continues(&running));
        // A task was polled on the thread.
        assert!(!look(Syscall::Running, 5, 4).continues(&running));
    }
}
