//! State shared by the layer (app threads), the watchdog and the aggregator.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use crate::base::config::Config;
use crate::tasks::cell::TaskCell;
use crate::tasks::threads::OwnTime;

/// Facts that app threads and the watchdog hand to the aggregator.
///
/// Only rare things travel here (a spawn, a poll that ran past the threshold); per-poll
/// statistics stay in the task's [`TaskCell`].
#[derive(Debug)]
pub(crate) enum ProbeEvent {
    Spawned(Arc<TaskCell>),
    /// The watchdog sees a poll past the threshold that is still running.
    StallRunning {
        thread: u32,
        task: u64,
        started_ns: u64,
        now_ns: u64,
    },
    /// Stacks sampled during a stall (which may have ended since).
    StallSamples {
        thread: u32,
        started_ns: u64,
        samples: Vec<taskscope_api::v1::StackSample>,
        activity: taskscope_api::v1::Activity,
    },
    /// A poll past the threshold returned (sent by the polling thread, exact duration).
    StallEnded {
        thread: u32,
        task: u64,
        started_ns: u64,
        duration_ns: u64,
        /// The probe's own time inside the poll (its hooks, nested in it).
        own: OwnTime,
        /// The thread's scheduler totals from the poll's start (or as near as known) to
        /// its end.
        sched: Option<crate::base::schedstat::Window>,
    },
    /// A runtime of the macros shut down with tasks alive, in a build whose probe sees
    /// workers, not tasks (counted by tokio, `setup/shutdown.rs`).
    AliveAtShutdown(taskscope_api::v1::AliveAtShutdown),
}

/// Counts of what had to be dropped, reported to clients.
#[derive(Debug, Default)]
pub(crate) struct DropCounters {
    pub(crate) spawn_events_delayed: AtomicU64,
    pub(crate) tasks_lost: AtomicU64,
    pub(crate) stall_events: AtomicU64,
    pub(crate) recording_updates: AtomicU64,
    pub(crate) ended_tasks_evicted: AtomicU64,
    /// Facts about resources and waits not kept (`waits.rs`).
    pub(crate) wait_events: AtomicU64,
}

impl DropCounters {
    pub(crate) fn to_proto(&self) -> taskscope_api::v1::Drops {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        taskscope_api::v1::Drops {
            spawn_events_delayed: get(&self.spawn_events_delayed),
            tasks_lost: get(&self.tasks_lost),
            stall_events: get(&self.stall_events),
            recording_updates: get(&self.recording_updates),
            ended_tasks_evicted: get(&self.ended_tasks_evicted),
            wait_events: get(&self.wait_events),
            ..Default::default()
        }
    }
}

/// Capacity of the shared spawn queue. Spawns normally go through the spawning thread's
/// own inbox (see `threads.rs`); this queue only serves threads whose thread-local state
/// is already torn down. When it is full, a task is announced at its next poll instead.
const SPAWN_QUEUE: usize = 32 * 1024;
/// Capacity of the stall queue, separate so that a storm of spawns never crowds out the
/// news of a stall.
const STALL_QUEUE: usize = 4 * 1024;

/// The shortest a poll runs before the probe times its own stretches in it in CPU time.
const EXACT_OWN_AFTER_MIN_NS: u64 = 1_000_000;

/// The aggregator's ends of the queues.
pub(crate) struct EventReceivers {
    pub(crate) spawns: Receiver<ProbeEvent>,
    pub(crate) stalls: Receiver<ProbeEvent>,
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) threshold_ns: u64,
    /// How long a poll runs before the probe's own stretches inside it are timed in the
    /// thread's CPU time too (`Local::own_stretch_start`): a tenth of the threshold, so
    /// that the part timed in wall time alone can shift a stall's verdict by at most that,
    /// and at least [`EXACT_OWN_AFTER_MIN_NS`], so that a low threshold does not put two
    /// system calls into every hook of ordinary polls.
    pub(crate) exact_own_after_ns: u64,
    spawns: SyncSender<ProbeEvent>,
    stalls: SyncSender<ProbeEvent>,
    /// Taken once by the aggregator.
    pub(crate) event_receiver: Mutex<Option<EventReceivers>>,
    /// Wakes the aggregator to publish a stall at once.
    pub(crate) urgent: tokio::sync::Notify,
    pub(crate) drops: DropCounters,
    /// Changes to locks and permits, for the wait-for graph (`waits.rs`).
    pub(crate) resources: crate::tasks::waits::ResourceEvents,
    pub(crate) instrumentation_seen: AtomicBool,
    pub(crate) stack_capture: Mutex<taskscope_api::v1::StackCapture>,
    /// Stack samples taken but not yet symbolized and handed over.
    pub(crate) samples_in_flight: AtomicU64,
    /// Await-chain dumps being taken or symbolized: the process's last update waits for
    /// them (bounded), so that a recording holds the dump of tasks that went idle last.
    pub(crate) dumps_in_flight: AtomicU64,
    /// Each polling thread's scheduler totals at its poll's start, estimated by the
    /// watchdog, for the thread to report if the poll is a stall.
    pub(crate) poll_starts: crate::base::schedstat::PollStarts,
    /// Set by `Probe::shutdown`: the probe's threads end, and the routes take in no new
    /// tasks (nothing would ever take them from the threads' inboxes).
    stopped: AtomicBool,
    /// The probe's own threads, joined when it is stopped.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// How to tell the threads that wait on a queue rather than check [`Shared::is_stopped`]
    /// (the symbolizer) to end, given by whoever started them.
    stoppers: Mutex<Vec<Stopper>>,
    /// The flight recorder: the threads' event rings and the recent history drained from
    /// them (`flight.rs`).
    pub(crate) flight: crate::tasks::flight::Flight,
}

/// Tells one of the probe's threads to end.
pub(crate) type Stopper = Box<dyn FnOnce() + Send>;

impl Shared {
    pub(crate) fn new(config: Config) -> Arc<Self> {
        let (spawns, spawn_receiver) = sync_channel(SPAWN_QUEUE);
        let (stalls, stall_receiver) = sync_channel(STALL_QUEUE);
        Arc::new(Self {
            threshold_ns: config.stall_threshold.as_nanos() as u64,
            exact_own_after_ns: (config.stall_threshold.as_nanos() as u64 / 10)
                .max(EXACT_OWN_AFTER_MIN_NS),
            flight: crate::tasks::flight::Flight::new(config.flight),
            config,
            spawns,
            stalls,
            event_receiver: Mutex::new(Some(EventReceivers {
                spawns: spawn_receiver,
                stalls: stall_receiver,
            })),
            urgent: tokio::sync::Notify::new(),
            drops: DropCounters::default(),
            resources: Default::default(),
            instrumentation_seen: AtomicBool::new(false),
            stack_capture: Mutex::new(Default::default()),
            samples_in_flight: AtomicU64::new(0),
            dumps_in_flight: AtomicU64::new(0),
            poll_starts: Default::default(),
            stopped: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            stoppers: Mutex::new(Vec::new()),
        })
    }

    /// What had to be dropped so far, the flight recorder's losses included.
    pub(crate) fn drops(&self) -> taskscope_api::v1::Drops {
        let threads = crate::tasks::threads::all();
        taskscope_api::v1::Drops {
            flight_events_overflowed: self.flight.overflowed(&threads),
            flight_threads_unrecorded: (self.flight.unrecorded_threads).load(Ordering::Relaxed),
            ..self.drops.to_proto()
        }
    }

    /// Whether `Probe::shutdown` stopped the probe.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Keeps one of the probe's threads, for [`Shared::stop`] to join.
    pub(crate) fn own_thread(&self, thread: std::thread::JoinHandle<()>) {
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(thread);
    }

    /// Keeps one of the probe's threads that only ends when told, and how to tell it.
    pub(crate) fn own_thread_stopped_by(&self, thread: std::thread::JoinHandle<()>, stop: Stopper) {
        self.stoppers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stop);
        self.own_thread(thread);
    }

    /// Stops the probe for good: flags it (each thread ends at its next turn; those that
    /// wait on a queue are told to), then joins its threads. The probe thread must have
    /// been told to end by then.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        let stoppers =
            std::mem::take(&mut *self.stoppers.lock().unwrap_or_else(|e| e.into_inner()));
        for stop in stoppers {
            stop();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
    }

    /// Queues an event without ever blocking; `false` when the queue is full.
    pub(crate) fn send(&self, event: ProbeEvent) -> bool {
        let queue = match event {
            ProbeEvent::Spawned(_) => &self.spawns,
            _ => &self.stalls,
        };
        match queue.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Hands a change of a resource to the aggregator, or counts it dropped.
    pub(crate) fn resource_event(&self, event: crate::tasks::waits::ResourceEvent) {
        if !self.resources.send(event) {
            self.drops.wait_events.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands a task to the aggregator (through this thread's inbox); `false` leaves it to be
    /// announced later.
    pub(crate) fn announce(&self, cell: &Arc<TaskCell>) -> bool {
        if self.is_stopped() {
            return false;
        }
        let sent = crate::tasks::threads::with_local(|local| local.post_spawned(cell))
            .unwrap_or_else(|| self.send(ProbeEvent::Spawned(cell.clone())));
        if sent {
            cell.mark_announced();
        }
        sent
    }

    /// Hands a task to the aggregator through the shared queue, for a task seen from a
    /// thread with no inbox; `false` leaves it to be announced later.
    pub(crate) fn announce_queued(&self, cell: &Arc<TaskCell>) -> bool {
        let sent = !self.is_stopped() && self.send(ProbeEvent::Spawned(cell.clone()));
        if sent {
            cell.mark_announced();
        }
        sent
    }

    /// The watchdog sees `polling` still running on thread `thread` past the threshold:
    /// tells the aggregator, and wakes it to tell watchers at once.
    pub(crate) fn report_stall_running(
        &self,
        thread: u32,
        polling: crate::tasks::threads::Polling,
        now_ns: u64,
    ) {
        let sent = self.send(ProbeEvent::StallRunning {
            thread,
            task: polling.task,
            started_ns: polling.started_ns,
            now_ns,
        });
        if sent {
            self.urgent.notify_one();
        } else {
            self.drops.stall_events.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A poll past the threshold returned, on this thread: tells the aggregator at once,
    /// with the exact duration, `own_ns` of it the probe's, and the thread's scheduler
    /// totals over it.
    pub(crate) fn report_stall_end(
        &self,
        cell: &TaskCell,
        thread: u32,
        started_ns: u64,
        duration_ns: u64,
        own: OwnTime,
    ) {
        let sched = crate::base::schedstat::of_this_thread().and_then(|to| {
            let end = crate::base::schedstat::Reading {
                at_ns: started_ns + duration_ns,
                stat: to,
            };
            let start = self.poll_starts.take(thread, started_ns, end)?;
            Some(crate::base::schedstat::Window {
                from_ns: start.at_ns,
                from: start.stat,
                to,
            })
        });
        self.send_stall_end(
            cell.identity.id,
            thread,
            started_ns,
            duration_ns,
            own,
            sched,
        );
    }

    /// A stall of `task` on `thread` is over; `own` of it was the probe's, `sched`: the
    /// thread's scheduler totals over it.
    pub(crate) fn send_stall_end(
        &self,
        task: u64,
        thread: u32,
        started_ns: u64,
        duration_ns: u64,
        own: OwnTime,
        sched: Option<crate::base::schedstat::Window>,
    ) {
        let sent = self.send(ProbeEvent::StallEnded {
            thread,
            task,
            started_ns,
            duration_ns,
            own,
            sched,
        });
        if sent {
            self.urgent.notify_one();
        } else {
            self.drops.stall_events.fetch_add(1, Ordering::Relaxed);
        }
    }
}
