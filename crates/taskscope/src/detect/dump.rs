//! Await chains: where each live task is waiting, from tokio's task dumps.
//!
//! A stall stack says where a *running* poll is stuck; an await chain says where a
//! *parked* task waits: the `.await` of a channel whose sender lives forever, of a
//! `Notify` nobody notifies, of a `JoinHandle` of a task that is itself stuck. tokio's
//! `Handle::dump` gives it for every task of a runtime (Linux on x86_64 and aarch64, with
//! `--cfg tokio_unstable`; the probe turns tokio's `taskdump` feature on there, so apps add
//! nothing).
//!
//! Dumps are taken on request (`Dump` RPC, [`requests`]), and just before a runtime
//! taskscope drives shuts down with tasks still alive ([`crate::setup::shutdown`]), so that `check`
//! can say where each leaked task was parked. A dump pauses the runtime's workers while it
//! re-polls every task, so the probe never takes one while a worker is stalled, takes one at
//! a time, bounds how often, and declines one that could hurt the app ([`safety`], and
//! once per process [`canary`]).

use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(taskscope_dumps)]
mod canary;
#[cfg(taskscope_dumps)]
pub(crate) mod capture;
#[cfg(taskscope_dumps)]
mod chains;
#[cfg(taskscope_dumps)]
pub(crate) mod requests;
pub(crate) mod runtimes;
#[cfg(taskscope_dumps)]
mod safety;

#[cfg(taskscope_dumps)]
pub(crate) use chains::build;

/// Whether the current poll is a dump's re-poll of a task (tokio polls every task once in
/// a tracing mode to see where it waits): not one of the app's polls, so not counted.
/// The hooks route never sees these (tokio runs no hooks for them); the tracing route
/// sees their span enters.
#[inline]
pub(crate) fn is_tracing() -> bool {
    #[cfg(taskscope_dumps)]
    return tokio::runtime::Handle::is_tracing();
    #[cfg(not(taskscope_dumps))]
    false
}

/// Dumps being taken now, and the probe time until which the last one's aftermath lasts.
static DUMPING: AtomicU64 = AtomicU64::new(0);
static AFTERMATH_UNTIL_NS: AtomicU64 = AtomicU64::new(0);
/// How long after a dump its wakes are still arriving (tokio wakes every traced task once
/// the scheduler regains control).
#[cfg_attr(not(taskscope_dumps), allow(dead_code))]
const AFTERMATH_NS: u64 = 50_000_000;

/// Whether a dump is being taken or has just been: the wakes seen now are mostly the
/// dump's own (waking every task it re-polled), which would make a task that nothing can
/// ever wake look woken. Only wakes are discounted, never a waker's clone or drop. This
/// is best effort: tokio also consumes references it never reported as waker clones, so
/// waker counts can still drift after a dump, which is why idle dumps are never taken
/// while wakers are tracked (`Config::dumps_when_idle`).
///
/// On the tracing route's wake path: two loads while no dump is near, the clock only
/// within an aftermath (which then ends itself).
#[inline]
pub(crate) fn in_aftermath() -> bool {
    if DUMPING.load(Ordering::Acquire) > 0 {
        return true;
    }
    let until = AFTERMATH_UNTIL_NS.load(Ordering::Acquire);
    if until == 0 {
        return false;
    }
    if crate::base::clock::now_ns() < until {
        return true;
    }
    // Over: later wakes skip the clock again.
    let _ = AFTERMATH_UNTIL_NS.compare_exchange(until, 0, Ordering::AcqRel, Ordering::Relaxed);
    false
}

/// Marks a dump in progress until dropped.
#[cfg_attr(not(taskscope_dumps), allow(dead_code))]
pub(crate) struct Dumping(());

impl Dumping {
    #[cfg_attr(not(taskscope_dumps), allow(dead_code))]
    pub(crate) fn start() -> Self {
        DUMPING.fetch_add(1, Ordering::AcqRel);
        Self(())
    }
}

impl Drop for Dumping {
    fn drop(&mut self) {
        AFTERMATH_UNTIL_NS.fetch_max(
            crate::base::clock::now_ns() + AFTERMATH_NS,
            Ordering::AcqRel,
        );
        DUMPING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether this build can take dumps, and if not, why (said once to clients).
pub(crate) fn unavailable_reason() -> Option<&'static str> {
    if cfg!(taskscope_dumps) {
        None
    } else if cfg!(tokio_unstable) {
        Some(
            "await chains are not available on this platform (tokio's task dumps need Linux \
             on x86_64 or aarch64)",
        )
    } else {
        Some("await chains need the app built with --cfg tokio_unstable")
    }
}
