//! Threads that polled tasks and the blocking pool.

use taskscope_api::v1;

/// One thread the probe has seen poll a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Thread {
    pub(crate) name: Box<str>,
    /// Task being polled now, 0 when none.
    pub(crate) polling_task: u64,
    pub(crate) poll_started_ns: u64,
    pub(crate) exited: bool,
    pub(crate) os_tid: u64,
    /// A runtime worker seen through tokio's thread hooks (builds without
    /// `--cfg tokio_unstable`); `None` for any other thread.
    pub(crate) worker: Option<Worker>,
}

/// What a build without `--cfg tokio_unstable` tells of a runtime worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Worker {
    pub(crate) parked: bool,
    /// Probe time of its last park (when parked) or wake.
    pub(crate) since_ns: u64,
    /// tokio's busy time and park count of it, once the probe knows which worker it is.
    pub(crate) metrics: Option<WorkerMetrics>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WorkerMetrics {
    pub(crate) busy_ns: u64,
    pub(crate) parks: u64,
}

/// tokio's own counts of the runtimes the probe could reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) alive_tasks: u64,
    pub(crate) workers: u32,
}

/// Threads by their probe-assigned number, and the blocking pool.
#[derive(Clone, Debug, Default)]
pub(crate) struct Runtime {
    /// Indexed by thread number (numbers are small, dense and never reused).
    threads: Vec<Option<Thread>>,
    pub(crate) blocking_alive: u64,
    pub(crate) blocking_running: u64,
    /// The source cannot say which thread polls what (a console-subscriber target).
    pub(crate) threads_unavailable: bool,
    /// The probe is on the hooks route, which does not see the blocking pool.
    pub(crate) blocking_unobserved: bool,
    /// tokio's counts, when the probe reached its runtimes.
    pub(crate) counts: Option<Counts>,
}

/// Thread numbers beyond this are not stored densely: a corrupt or hostile stream must not
/// make the model allocate gigabytes.
const MAX_DENSE_THREAD: usize = 1 << 16;

impl Runtime {
    pub(crate) fn apply(&mut self, state: &v1::RuntimeState) {
        for thread in &state.threads {
            let index = thread.thread as usize;
            if index >= MAX_DENSE_THREAD {
                continue;
            }
            if self.threads.len() <= index {
                self.threads.resize(index + 1, None);
            }
            self.threads[index] = Some(Thread {
                name: thread.name.as_str().into(),
                polling_task: thread.polling_task,
                poll_started_ns: thread.poll_started_ns,
                exited: thread.exited,
                os_tid: thread.os_tid,
                worker: thread.worker.then_some(Worker {
                    parked: thread.parked,
                    since_ns: thread.since_ns,
                    metrics: thread.metrics_known.then_some(WorkerMetrics {
                        busy_ns: thread.busy_ns,
                        parks: thread.parks,
                    }),
                }),
            });
        }
        self.blocking_alive = state.blocking_alive;
        self.blocking_running = state.blocking_running;
        self.counts = state.runtimes_known.then_some(Counts {
            alive_tasks: state.alive_tasks,
            workers: state.workers,
        });
    }

    pub(crate) fn thread(&self, number: u32) -> Option<&Thread> {
        self.threads.get(number as usize)?.as_ref()
    }

    /// The thread's name, or `thread #N` when the probe never named it.
    pub(crate) fn thread_name(&self, number: u32) -> String {
        match self.thread(number) {
            Some(thread) if !thread.name.is_empty() => thread.name.to_string(),
            _ if self.threads_unavailable => "n/a (console)".to_owned(),
            _ => format!("thread #{number}"),
        }
    }

    #[allow(
        dead_code,
        reason = "read API the dashboard renders from; check does not need it"
    )]
    pub(crate) fn threads(&self) -> impl Iterator<Item = (u32, &Thread)> {
        self.threads
            .iter()
            .enumerate()
            .filter_map(|(number, thread)| Some((number as u32, thread.as_ref()?)))
    }
}
