//! The runtimes a dump can reach.
//!
//! tokio hands the probe no runtime handle through its hooks, so runtimes are registered
//! where the probe meets them: `#[taskscope::main]`/`#[taskscope::test]` register the
//! runtime they build for as long as it lives, and `taskscope::init()` called inside a
//! runtime registers that one.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::runtime::Handle;

/// How the probe learns where a runtime's tasks were at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// taskscope drives it and dumps it just before it shuts down.
    DumpedAtShutdown,
    /// Its end is out of the probe's reach (`init()`): dumped when tasks go idle, under
    /// `TASKSCOPE_DUMP_WHEN_IDLE`.
    Unseen,
}

/// The runtimes dumps can reach: registered by the macros' generated code and by
/// `init()`, which reach the probe through no handle of their own.
static RUNTIMES: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

struct Entry {
    key: u64,
    handle: Handle,
    ending: Ending,
}
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// Keeps a runtime reachable for dumps until dropped.
#[must_use = "the runtime is forgotten when the registration is dropped"]
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        lock().retain(|entry| entry.key != self.0);
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

/// Registers a runtime whose end the probe does not see.
pub(crate) fn register_as(handle: &Handle, ending: Ending) -> Registration {
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    lock().push(Entry {
        key,
        handle: handle.clone(),
        ending,
    });
    Registration(key)
}

/// Forgets the runtimes that have shut down (those registered by `init()` are never
/// unregistered: their end is not seen).
#[cfg_attr(not(taskscope_dumps), allow(dead_code))]
pub(crate) fn forget_closed() {
    lock().retain(|entry| !crate::tasks::outcome::is_closed(&entry.handle));
}

/// The runtimes registered now (those ending as `ending`, or all), oldest first.
#[cfg_attr(not(taskscope_dumps), allow(dead_code))]
pub(crate) fn all(ending: Option<Ending>) -> Vec<Handle> {
    lock()
        .iter()
        .filter(|entry| ending.is_none_or(|e| e == entry.ending))
        .map(|entry| entry.handle.clone())
        .collect()
}
