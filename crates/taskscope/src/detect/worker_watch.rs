//! Stalls on plain stable tokio, where no hook and no span marks a poll: a runtime worker
//! that tokio's thread hooks say is not parked (`tasks/worker_park.rs`) and that Linux
//! says has stayed blocked in one system call past the stall threshold is running a task
//! that blocks it (a `std::thread::sleep`, a blocking read, a `std` mutex).
//!
//! Every watchdog tick looks at each unparked worker from outside (`thread_state.rs`: the
//! system call it is blocked in, and how often it has blocked), never at a parked one. A
//! run starts at the first look that finds the worker blocked, and continues while every
//! look finds it unparked since (its park count unchanged), still blocked, and blocked at
//! most once more between two looks. Past the threshold it is reported as a stall while it
//! happens, through the same events and the same stack samples as any stall, so that the
//! stack names the blocking line; its duration runs from the first to the last look that
//! found it blocked (never more than it lasted).
//!
//! A worker that computes in one long poll makes no system call to see from outside; what
//! tells it apart from a hot loop of short polls is tokio's own stable metrics of the
//! worker (`tasks/worker_park.rs` finds which worker a thread is, from the thread's own
//! parks or, for a worker that has hardly parked, narrowed down at these looks): tokio
//! submits them every `event_interval` scheduler ticks (61 by default) and whenever the
//! worker parks, never inside a poll. An unparked worker whose submitted busy time and
//! park count have not moved past the threshold is inside one poll (or a run of fewer than
//! 61 polls, each then long on average), and is reported as a stall just the same.
//!
//! Busy but healthy workers are never reported: many short polls without a park keep the
//! worker on a CPU (`running`) or block it for moments, in calls that return before the
//! next look or with a block between looks, and move its metrics at every maintenance.
//!
//! A stall's time waiting for a CPU (which tells a stall of the app from one of an
//! overloaded machine, `base/schedstat.rs`) is measured over the same stretch as its
//! duration: the thread's scheduler totals are read at the look the stall is timed from
//! and at the last look that found it going on, not when the stall was first seen (a
//! threshold later) nor at the look after its end.
//!
//! What this leaves unseen, and `--cfg tokio_unstable` sees (`docs/guide.md`, "What each
//! build sees"): a long poll on a worker whose index is not known yet (not found from its
//! parks, and every other worker of its runtime busy at every look so far) or on a runtime
//! built with a larger `event_interval` than its polls can fill within the threshold;
//! which task stalled (the stall belongs to the worker, its spawn location unknown).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::base::clock;
use crate::base::schedstat::{self, SchedStat};
use crate::base::thread_state::{self, Syscall, ThreadState};
use crate::detect::running_stall::RunningStall;
use crate::detect::stall_stack;
use crate::tasks::cell::{End, Identity, Kind, TaskCell};
use crate::tasks::shared::{ProbeEvent, Shared};
use crate::tasks::threads::{OwnTime, Polling, ThreadSlot};
use crate::tasks::worker_park::{self, Submitted, WorkerPark};

/// The workers the watchdog watches.
#[derive(Default)]
pub(crate) struct Workers {
    watched: Vec<Watched>,
}

impl Workers {
    /// One look at every worker (called every watchdog tick).
    pub(crate) fn scan(&mut self, shared: &Shared, capture: Option<&stall_stack::Capture>) {
        for worker in worker_park::take_new() {
            self.watched.push(Watched {
                slot: worker.slot,
                park: worker.park,
                last: None,
                frozen: None,
                run: None,
            });
        }
        self.watched
            .retain_mut(|worker| worker.look(shared, capture));
    }
}

/// One look at a worker found blocked.
#[derive(Debug, Clone, Copy)]
struct Look {
    state: ThreadState,
    parks: u64,
    at_ns: u64,
}

impl Look {
    /// Whether the worker can have stayed in one blocking call from `earlier` to now: no
    /// park in between, and at most one block more (into the call it is in now).
    fn continues(&self, earlier: &Look) -> bool {
        if self.parks != earlier.parks {
            return false;
        }
        match (
            self.state.voluntary_switches,
            earlier.state.voluntary_switches,
        ) {
            (Some(now), Some(then)) => now.saturating_sub(then) <= 1,
            // A futex or epoll wait (a `std` mutex, say): Linux is not asked how often it
            // blocked, so the same call must be seen both times.
            _ => self.state.syscall == earlier.state.syscall,
        }
    }
}

/// The worker's submitted metrics, unchanged since the first look that found them with the
/// worker unparked and its park count as now.
#[derive(Debug, Clone, Copy)]
struct Frozen {
    since_ns: u64,
    /// The thread's scheduler totals at that look, where a stall would be timed from.
    sched: Option<SchedStat>,
    submitted: Submitted,
    parks: u64,
}

/// A stretch of time a worker has spent in one poll: blocked without parking, or with
/// its metrics frozen.
struct Run {
    started_ns: u64,
    /// The last look that found the run going on.
    last_ns: u64,
    /// The thread's scheduler totals at `started_ns` and at `last_ns`: its wait for a CPU
    /// is measured over the run's duration, no more and no less.
    sched_at_start: Option<SchedStat>,
    sched_at_last: Option<SchedStat>,
    /// Set once the run passed the threshold: the stall, reported as a task of its own.
    stall: Option<Reported>,
}

/// A run reported as a stall.
struct Reported {
    /// The task that stands for the stall.
    cell: Arc<TaskCell>,
    running: RunningStall,
}

/// A worker being watched.
struct Watched {
    slot: Arc<ThreadSlot>,
    park: Arc<WorkerPark>,
    last: Option<Look>,
    frozen: Option<Frozen>,
    run: Option<Run>,
}

impl Watched {
    /// Looks at the worker once; `false` once it is gone for good.
    fn look(&mut self, shared: &Shared, capture: Option<&stall_stack::Capture>) -> bool {
        if self.slot.has_exited() {
            self.end_run(shared);
            return false;
        }
        // Parked, or polling a task the thread slots already watch (a `block_on` body):
        // nothing to read from Linux.
        if self.park.is_parked() || self.slot.read().is_some() {
            self.end_run(shared);
            self.last = None;
            self.frozen = None;
            return true;
        }
        let Some(state) = thread_state::of_thread(self.slot.os_tid) else {
            self.end_run(shared);
            return false;
        };
        let look = Look {
            state,
            parks: self.park.parks(),
            at_ns: clock::now_ns(),
        };
        self.park.narrow();
        let frozen = self.follow_metrics(&look);
        let frozen_since = frozen.map(|f| f.since_ns);
        let frozen_since_run = |run: &Run| frozen_since.is_some_and(|at| at <= run.started_ns);
        let blocked = matches!(state.syscall, Syscall::Blocked(_));
        let still_blocked = blocked && self.last.is_some_and(|l| look.continues(&l));
        let continued = self
            .run
            .as_ref()
            .is_some_and(|run| still_blocked || frozen_since_run(run));
        if !continued {
            self.end_run(shared);
        }
        self.last = blocked.then_some(look);
        let long_frozen =
            frozen.filter(|f| look.at_ns.saturating_sub(f.since_ns) >= shared.threshold_ns);
        if blocked || long_frozen.is_some() || self.run.is_some() {
            let sched_now = schedstat::of_thread(self.slot.os_tid);
            let run = self.run.get_or_insert_with(|| {
                let (started_ns, sched_at_start) =
                    long_frozen.map_or((look.at_ns, sched_now), |f| (f.since_ns, f.sched));
                Run {
                    started_ns,
                    last_ns: look.at_ns,
                    sched_at_start,
                    sched_at_last: sched_now,
                    stall: None,
                }
            });
            run.last_ns = look.at_ns;
            run.sched_at_last = sched_now;
            self.follow(shared, capture, blocked);
        }
        true
    }

    /// Since when the worker's submitted metrics have not moved, with the worker unparked
    /// all along; `None` where its metrics cannot be read.
    fn follow_metrics(&mut self, look: &Look) -> Option<Frozen> {
        let Some(submitted) = self.park.submitted() else {
            self.frozen = None;
            return None;
        };
        let unchanged = |f: &Frozen| f.submitted == submitted && f.parks == look.parks;
        if !self.frozen.as_ref().is_some_and(unchanged) {
            self.frozen = Some(Frozen {
                since_ns: look.at_ns,
                sched: schedstat::of_thread(self.slot.os_tid),
                submitted,
                parks: look.parks,
            });
        }
        self.frozen
    }

    /// Reports the run as a stall once it is past the threshold, refreshes it every
    /// publish interval, and samples its stack when due.
    fn follow(&mut self, shared: &Shared, capture: Option<&stall_stack::Capture>, blocked: bool) {
        let Some(run) = self.run.as_mut() else { return };
        let now = run.last_ns;
        if now.saturating_sub(run.started_ns) < shared.threshold_ns {
            return;
        }
        let is_new = run.stall.is_none();
        if is_new {
            let cell = announce(shared, &self.slot, run.started_ns, blocked);
            run.stall = Some(Reported {
                cell,
                running: RunningStall::new(shared.threshold_ns),
            });
        }
        let stall = run.stall.as_mut().expect("set above");
        let polling = Polling {
            task: stall.cell.identity.id,
            started_ns: run.started_ns,
        };
        (stall.running).follow(shared, &self.slot, polling, now, capture);
    }

    /// The run is over: a stall, if it was one, ended at the last look that found the
    /// worker blocked, and so did the task that stands for it.
    fn end_run(&mut self, shared: &Shared) {
        let Some(run) = self.run.take() else { return };
        let Some(stall) = run.stall else { return };
        let sched = run
            .sched_at_start
            .zip(run.sched_at_last)
            .map(|(from, to)| schedstat::Window {
                from_ns: run.started_ns,
                from,
                to,
            });
        let id = stall.cell.identity.id;
        let duration = run.last_ns - run.started_ns;
        stall.cell.poll_ended(run.started_ns, run.last_ns);
        shared.send_stall_end(
            id,
            self.slot.number,
            run.started_ns,
            duration,
            OwnTime::ZERO,
            sched,
        );
        let end = End {
            at_ns: run.last_ns,
            outcome: taskscope_api::v1::Outcome::Completed,
            thread: self.slot.number,
            panic: None,
        };
        crate::tasks::lifecycle::ended(shared, &stall.cell, end);
    }
}

/// The stall as a task of its own, for views and reports that show stalls by task: named
/// after the worker's thread and what it was found doing (blocked in a system call, or
/// busy on a CPU), with no spawn location (stable tokio tells none), from the start of the
/// stall to its end.
fn announce(shared: &Shared, slot: &ThreadSlot, started_ns: u64, blocked: bool) -> Arc<TaskCell> {
    let doing = if blocked { "blocked" } else { "busy" };
    let cell = crate::tasks::recycle::cell(Identity {
        id: crate::tasks::task_table::next_body_id(),
        kind: Kind::Task,
        name: Some(format!("{doing} {}", slot.name).into()),
        file: "",
        line: 0,
        column: 0,
        parent: 0,
        spawned_ns: started_ns,
        spawn_thread: slot.number,
    });
    if shared.send(ProbeEvent::Spawned(cell.clone())) {
        cell.mark_announced();
    } else {
        shared.drops.tasks_lost.fetch_add(1, Ordering::Relaxed);
    }
    cell
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(syscall: Syscall, voluntary_switches: Option<u64>, parks: u64) -> Look {
        Look {
            state: ThreadState {
                syscall,
                voluntary_switches,
            },
            parks,
            at_ns: 0,
        }
    }

    const SLEEP: Syscall = Syscall::Blocked(230);
    const FUTEX: Syscall = Syscall::Blocked(202);

    #[test]
    fn a_worker_still_in_one_blocking_call_continues_its_run() {
        assert!(look(SLEEP, Some(6), 3).continues(&look(SLEEP, Some(6), 3)));
        assert!(look(SLEEP, Some(7), 3).continues(&look(SLEEP, Some(6), 3)));
        assert!(look(FUTEX, None, 3).continues(&look(FUTEX, None, 3)));
    }

    #[test]
    fn a_park_or_blocks_in_between_end_the_run() {
        assert!(!look(SLEEP, Some(6), 4).continues(&look(SLEEP, Some(6), 3)));
        assert!(!look(SLEEP, Some(8), 3).continues(&look(SLEEP, Some(6), 3)));
        assert!(!look(FUTEX, None, 3).continues(&look(SLEEP, Some(6), 3)));
    }
}
