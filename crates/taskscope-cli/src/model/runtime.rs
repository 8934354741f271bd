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
            });
        }
        self.blocking_alive = state.blocking_alive;
        self.blocking_running = state.blocking_running;
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
