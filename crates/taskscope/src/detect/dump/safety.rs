//! Whether tokio's dump can be taken of a runtime now without hurting the app; checked
//! just before every dump, whoever asked for it.
//!
//! **Multi-thread runtimes.** `Handle::dump` pauses every worker at a barrier; the last to
//! arrive gathers all the workers' run queues into one fresh queue of 256 slots
//! (`Shared::steal_all` in tokio's `worker/taskdump.rs`): it steals half a queue at a time
//! while that queue is not empty, but a steal is refused once the fresh queue is half
//! full, and nothing else can empty the queue it steals from (its worker waits at the
//! barrier). So when more than 128 tasks wait in the run queues as the workers pause,
//! that worker spins for ever and the others wait for it for ever: the app is frozen, and
//! a process dumped before shutdown never exits. Nothing can release them once it started
//! (the probe's timeout only stops waiting), so the probe must not start such a dump. A
//! task sits in at most one run queue, once, so a runtime with at most [`MAX_QUEUED`]
//! tasks alive while its workers pause cannot reach it: the probe dumps a multi-thread
//! runtime only when its live tasks, plus those its current spawn rate adds in
//! [`PAUSE_WINDOW`], stay within that. The depth of the queues now would not do: they
//! refill between the check and the pause (a timer firing for 200 tasks at once is
//! enough), and the freeze comes from the one time they did.
//!
//! **Current-thread runtimes.** The dump runs on the runtime's own thread, in a poll of
//! the probe's (its throw-away task, or the body at shutdown), and re-polls the queued
//! tasks as well as the idle ones. A queued task (woken, or spawned and never polled) runs
//! its code up to its first tokio `.await` inside that re-poll, and a spawn or a wake
//! there reaches for the scheduler tokio's dump holds borrowed, a panic that ends the
//! task, or the process. The probe therefore dumps a current-thread runtime only in a
//! poll that finds its run queues empty (nothing else runs on that thread meanwhile),
//! yielding until it does or its time is up; an idle task re-polled stops at the tokio
//! future it was already waiting on. Its queue has no capacity to exhaust.
//!
//! **The pause.** A dump holds the runtime while it re-polls every task, a time that
//! grows with the task count and cannot be cut short once begun. The probe keeps it under
//! [`PAUSE_CAP`]: it learns what a dump costs per task in this process from each dump it
//! takes ([`record_pause`]; [`ASSUMED_PER_TASK`] until the first), and declines one whose
//! expected pause is over the cap. A dump that took longer than expected all the same
//! teaches the next one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

/// Half of a tokio worker's 256-slot run queue: the most tasks a dump's gathering of the
/// run queues can take in (see the module's documentation).
pub(crate) const MAX_QUEUED: usize = 128;

/// How long the workers of a multi-thread runtime may take to pause after a dump is asked
/// for, with margin: a worker pauses between two polls, and one in a poll past
/// `capture`'s stall limit (100 ms) makes the probe decline the dump anyway.
pub(crate) const PAUSE_WINDOW: Duration = Duration::from_millis(200);

/// How long the spawn rate is measured for, before each dump of a multi-thread runtime.
const RATE_SAMPLE: Duration = Duration::from_millis(20);

/// The longest the probe lets one dump hold a runtime.
pub(crate) const PAUSE_CAP: Duration = Duration::from_millis(250);

/// What a dump is assumed to cost per task before this process has taken one: 20 ms per
/// thousand tasks, several times what a release build measures (docs/performance.md), as
/// a debug build or a loaded machine can take.
const ASSUMED_PER_TASK: Duration = Duration::from_micros(20);

/// Dumps of fewer tasks than this teach nothing about the cost per task: their fixed costs
/// (a thread started, the workers woken) would pass for it.
const LEARN_FROM: usize = 500;

/// The cost per task of this process's last dump of at least [`LEARN_FROM`] tasks, in ns.
static NS_PER_TASK: AtomicU64 = AtomicU64::new(ASSUMED_PER_TASK.as_nanos() as u64);

/// Remembers what a dump of `tasks` tasks cost, for the next one's estimate.
pub(crate) fn record_pause(tasks: usize, pause: Duration) {
    if tasks >= LEARN_FROM {
        let per_task = pause.as_nanos() as u64 / tasks as u64;
        NS_PER_TASK.store(per_task.max(1), Ordering::Relaxed);
    }
}

/// Why a dump of the runtime behind `handle` would hold it too long, if it would.
pub(crate) fn over_budget(handle: &Handle) -> Option<String> {
    let tasks = handle.metrics().num_alive_tasks() as u64;
    let per_task = NS_PER_TASK.load(Ordering::Relaxed);
    let expected = Duration::from_nanos(tasks * per_task);
    (expected > PAUSE_CAP).then(|| {
        format!(
            "declined: this runtime has {tasks} tasks, and a dump would hold it for about {} \
             ms ({:.1} ms per thousand tasks in this process), over the {} ms the probe lets \
             a dump hold an app; a current-thread runtime with fewer tasks is dumped",
            expected.as_millis(),
            per_task as f64 / 1_000.0,
            PAUSE_CAP.as_millis()
        )
    })
}

/// Why the multi-thread runtime behind `handle` must not be dumped now, if it must not.
pub(crate) async fn multi_thread_refusal(handle: &Handle) -> Option<String> {
    let metrics = handle.metrics();
    let spawned_before = metrics.spawned_tasks_count();
    tokio::time::sleep(RATE_SAMPLE).await;
    let spawned = metrics.spawned_tasks_count() - spawned_before;
    let alive = metrics.num_alive_tasks();
    let window_spawns = spawned * PAUSE_WINDOW.as_millis() as u64 / RATE_SAMPLE.as_millis() as u64;
    if alive as u64 + window_spawns <= MAX_QUEUED as u64 {
        return None;
    }
    let rate = if window_spawns > 0 {
        format!(
            " (and spawns about {window_spawns} every {} ms)",
            PAUSE_WINDOW.as_millis()
        )
    } else {
        String::new()
    };
    Some(format!(
        "declined: this multi-thread runtime has {alive} tasks{rate}, and tokio's dump \
         never finishes, holding every worker for good, when more than {MAX_QUEUED} tasks \
         wait in the run queues as its workers pause; the probe dumps a multi-thread \
         runtime only while it has at most {MAX_QUEUED}. To see where tasks wait: run the \
         same code on a current-thread runtime (the default of #[taskscope::test], or \
         #[taskscope::main(flavor = \"current_thread\")]), which is dumped at any size, \
         or with fewer tasks"
    ))
}

/// Waits on the current-thread runtime behind `handle`, from one of its polls, until its
/// run queues are empty (the one safe moment to dump it), or says why not by `deadline`.
pub(crate) async fn until_queues_empty(handle: &Handle, deadline: Instant) -> Result<(), String> {
    let metrics = handle.metrics();
    loop {
        let queued = metrics.global_queue_depth() + metrics.worker_local_queue_depth(0);
        if queued == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "declined: this current-thread runtime always had tasks waiting to run \
                 ({queued} just now), and tokio's dump would run them inside the dump, \
                 where a spawn or a wake ends the app's task with a panic; ask again when \
                 the runtime is less busy"
            ));
        }
        tokio::task::yield_now().await;
    }
}
