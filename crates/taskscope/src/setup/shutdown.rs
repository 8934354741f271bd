//! What a runtime taskscope drives does just before it shuts down with tasks still alive.
//!
//! `#[taskscope::main]` and `#[taskscope::test]` run this between the body's return and
//! the runtime's drop, and only when tasks are still alive (a program that joined its tasks
//! pays nothing):
//!
//! 1. **Settle.** A task woken just before the body returned (told to stop through a
//!    `Notify`, a `CancellationToken`, a channel) is on its way out, but whether a worker
//!    polls it before the runtime drops is a race: plain tokio runs it in some runs and
//!    drops it in others, and a leak finding that comes and goes is worse than none. The
//!    probe lets tasks already woken run until the run queues are empty and no poll has
//!    started for two rounds, for at most [`SETTLE_LIMIT`]. This wakes nothing: it only
//!    gives what was already scheduled the turn tokio might have given it anyway. A task
//!    that is still alive after that (a forgotten ticker woken at the very moment) was
//!    polled and went back to waiting: a leak every run.
//! 2. **Dump.** Where each remaining task waits (its await chain), so that `check`'s leak
//!    findings name the `.await` it is parked on (see [`crate::detect::dump`]).

use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};

/// The longest the settling waits for woken tasks to run.
pub(crate) const SETTLE_LIMIT: Duration = Duration::from_millis(100);
/// The longest the dump at shutdown (taking, symbolizing, publishing) holds the exit.
#[cfg(taskscope_dumps)]
const DUMP_WAIT: Duration = Duration::from_secs(5);

/// Runs inside the runtime's `block_on`, after the body returned.
#[doc(hidden)]
pub async fn before_shutdown() {
    if crate::setup::probe::running().is_none() {
        return;
    }
    let handle = Handle::current();
    if handle.metrics().num_alive_tasks() == 0 {
        return;
    }
    settle(&handle).await;
    let alive = handle.metrics().num_alive_tasks();
    if alive == 0 {
        return;
    }
    if !cfg!(tokio_unstable) {
        count_alive(alive);
    }
    #[cfg(taskscope_dumps)]
    dump(&handle).await;
    crate::tasks::runtimes::mark_closing(&handle);
}

async fn settle(handle: &Handle) {
    let deadline = Instant::now() + SETTLE_LIMIT;
    let mut quiet_rounds = 0;
    let mut last = crate::tasks::threads::activity();
    while quiet_rounds < 2 && Instant::now() < deadline {
        // On a current-thread runtime, yielding is what lets its queued tasks run; on a
        // multi-thread one the workers run them, and this thread (not a worker) waits.
        tokio::task::yield_now().await;
        if handle.runtime_flavor() == RuntimeFlavor::MultiThread {
            std::thread::sleep(Duration::from_millis(1));
        }
        let now = crate::tasks::threads::activity();
        let idle = now == last && queues_empty(handle);
        quiet_rounds = if idle { quiet_rounds + 1 } else { 0 };
        last = now;
    }
}

/// Where tasks are not seen one by one (no `--cfg tokio_unstable`), tokio's count of the
/// tasks still alive is what the probe can tell: said to clients with the thread that ran
/// the body, which libtest names after the test.
fn count_alive(alive: usize) {
    let Some(shared) = crate::setup::probe::on_hooks() else {
        return;
    };
    let alive = taskscope_api::v1::AliveAtShutdown {
        at_ns: crate::base::clock::now_ns(),
        alive_tasks: alive as u64,
        thread_name: std::thread::current().name().unwrap_or_default().to_owned(),
        is_test: IS_TEST.with(std::cell::Cell::get),
    };
    let sent = shared.send(crate::tasks::shared::ProbeEvent::AliveAtShutdown(alive));
    if sent {
        shared.urgent.notify_one();
    } else {
        shared
            .drops
            .stall_events
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

thread_local! {
    /// Whether the runtime this thread drives is a `#[taskscope::test]`'s (set by
    /// `init_for_runtime`, on the thread that then runs the body and this shutdown).
    pub(crate) static IS_TEST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn queues_empty(handle: &Handle) -> bool {
    let metrics = handle.metrics();
    let global = metrics.global_queue_depth() == 0;
    #[cfg(tokio_unstable)]
    let local = (0..metrics.num_workers()).all(|w| metrics.worker_local_queue_depth(w) == 0);
    #[cfg(not(tokio_unstable))]
    let local = true;
    global && local
}

/// Takes the dump here, on the runtime (a current-thread runtime can only be dumped from
/// inside), and has the probe symbolize and publish it before the process goes on to exit.
#[cfg(taskscope_dumps)]
async fn dump(handle: &Handle) {
    let taken_ns = crate::base::clock::now_ns();
    let raw =
        crate::detect::dump::capture::take(handle, crate::detect::dump::requests::PAUSE_TIMEOUT)
            .await;
    let Some(probe) = crate::setup::probe::running() else {
        return;
    };
    let (done, published) = std::sync::mpsc::channel();
    let sent = probe
        .commands
        .send(crate::serve::command::Command::ShutdownDump {
            raw,
            taken_ns,
            done,
        });
    if sent.is_ok() {
        // Blocking: with `start_paused`, a tokio timer here would jump the app's clock.
        let _ = published.recv_timeout(DUMP_WAIT);
    }
}
