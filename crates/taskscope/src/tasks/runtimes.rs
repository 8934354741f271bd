//! The runtimes the probe knows: one registry for every question asked about a runtime
//! the probe meets.
//!
//! tokio hands the probe no runtime handle through its hooks or spans, so runtimes are
//! registered where the probe meets them: `#[taskscope::main]`/`#[taskscope::test]` and
//! `taskscope::block_on` register the runtime they run for as long as they run it, and
//! `taskscope::init()` called inside a runtime registers that one. Two things are asked of
//! it:
//!
//! * which runtimes a task dump can reach (`detect/dump/`), and how each one ends;
//! * whether the runtime of this thread is being dropped by the macros now, which decides
//!   how a task ended on the hooks route (`outcome.rs`; `setup/shutdown.rs` says it).

use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use std::task::{Context, Poll, Waker};

use tokio::runtime::Handle;

/// How the probe learns where a runtime's tasks were at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// taskscope drives it and dumps it just before it shuts down.
    DumpedAtShutdown,
    /// Its end is out of the probe's reach (`init()`, `taskscope::block_on`):
    /// dumped when tasks go idle, under `TASKSCOPE_DUMP_WHEN_IDLE`.
    Unseen,
}

/// The registry: global because the macros' generated code, `init()` and the hooks'
/// callbacks reach the probe through no handle of their own.
static RUNTIMES: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
/// Set once any runtime is marked closing, so that the question costs one load until then.
static ANY_CLOSING: AtomicBool = AtomicBool::new(false);
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

struct Entry {
    key: u64,
    /// Reachable for dumps while registered; `None` once its registration is dropped (a
    /// runtime marked closing stays known by its id until the process ends).
    handle: Option<Handle>,
    ending: Ending,
    #[cfg(tokio_unstable)]
    id: tokio::runtime::Id,
    /// Its drop comes next: the macros' shutdown steps are done.
    closing: bool,
}

/// Keeps a runtime reachable for dumps until dropped.
#[must_use = "the runtime is forgotten when the registration is dropped"]
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        lock().retain_mut(|entry| {
            if entry.key != self.0 {
                return true;
            }
            // A runtime being dropped is still asked about by its tasks' ends.
            entry.handle = None;
            entry.closing
        });
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    RUNTIMES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes the runtime of `#[taskscope::main]`/`#[taskscope::test]` reachable for dumps
/// while the registration lives (it dumps itself at shutdown).
pub fn register(handle: &Handle) -> Registration {
    register_as(handle, Ending::DumpedAtShutdown)
}

/// Registers a runtime that ends as `ending`, until the registration is dropped.
pub(crate) fn register_as(handle: &Handle, ending: Ending) -> Registration {
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    lock().push(Entry {
        key,
        handle: Some(handle.clone()),
        ending,
        #[cfg(tokio_unstable)]
        id: handle.id(),
        closing: false,
    });
    Registration(key)
}

/// Forgets the runtimes that have shut down (those registered by `init()` are never
/// unregistered: their end is not seen).
#[cfg_attr(not(taskscope_dumps), allow(dead_code))]
pub(crate) fn forget_closed() {
    lock().retain(|entry| {
        entry.closing
            || entry
                .handle
                .as_ref()
                .is_some_and(|handle| !is_closed(handle))
    });
}

/// The runtimes reachable now (those ending as `ending`, or all), oldest first.
#[cfg_attr(not(taskscope_dumps), allow(dead_code))]
pub(crate) fn all(ending: Option<Ending>) -> Vec<Handle> {
    lock()
        .iter()
        .filter(|entry| ending.is_none_or(|e| e == entry.ending))
        .filter_map(|entry| entry.handle.clone())
        .collect()
}

/// Says that the registered runtime of `handle` is dropped next (`setup/shutdown.rs`).
pub(crate) fn mark_closing(handle: &Handle) {
    #[cfg(tokio_unstable)]
    for entry in lock().iter_mut().filter(|entry| entry.id == handle.id()) {
        entry.closing = true;
    }
    #[cfg(not(tokio_unstable))]
    let _ = handle;
    ANY_CLOSING.store(true, Ordering::Release);
}

/// Whether the runtime of this thread is being dropped by `#[taskscope::main]` or
/// `#[taskscope::test]`. A task still busy then (a ticker woken every millisecond) may be
/// in a poll when tokio cancels it, and tokio then ends it right after that poll, where
/// the hooks route would take its end for a completion: it was alive at shutdown.
/// Costs one load until some runtime shuts down.
pub(crate) fn current_runtime_is_closing() -> bool {
    if !ANY_CLOSING.load(Ordering::Acquire) {
        return false;
    }
    closing_here()
}

#[cfg(tokio_unstable)]
fn closing_here() -> bool {
    let Ok(handle) = Handle::try_current() else {
        return false;
    };
    let id = handle.id();
    lock().iter().any(|entry| entry.closing && entry.id == id)
}

#[cfg(not(tokio_unstable))]
fn closing_here() -> bool {
    false
}

/// Whether `handle`'s runtime is shutting down or gone.
///
/// tokio closes a runtime's task list before cancelling what is left in it, and cancels a
/// task spawned onto a closed list immediately, inside `spawn`. So a trivial spawn that
/// comes back already cancelled proves the runtime is shutting down; one that does not
/// proves it is not (then the spawned no-op simply runs and completes).
pub(crate) fn is_closed(handle: &tokio::runtime::Handle) -> bool {
    let join = crate::base::quiet::while_quiet(|| handle.spawn(std::future::ready(())));
    if !join.is_finished() {
        return false;
    }
    let mut join = pin!(join);
    let mut cx = Context::from_waker(Waker::noop());
    match join.as_mut().poll(&mut cx) {
        Poll::Ready(Err(error)) => error.is_cancelled(),
        _ => false,
    }
}
