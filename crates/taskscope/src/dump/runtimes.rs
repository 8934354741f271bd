//! The runtimes a dump can reach.
//!
//! tokio hands the probe no runtime handle through its hooks, so runtimes are registered
//! where the probe meets them: `#[taskscope::main]`/`#[taskscope::test]` register the
//! runtime they build for as long as it lives, and `taskscope::init()` called inside a
//! runtime registers that one.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::runtime::Handle;

static RUNTIMES: Mutex<Vec<(u64, Handle)>> = Mutex::new(Vec::new());
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// Keeps a runtime reachable for dumps until dropped.
#[must_use = "the runtime is forgotten when the registration is dropped"]
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        lock().retain(|(key, _)| *key != self.0);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<(u64, Handle)>> {
    RUNTIMES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes `handle`'s runtime reachable for dumps while the registration lives.
pub fn register(handle: &Handle) -> Registration {
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    lock().push((key, handle.clone()));
    Registration(key)
}

/// Every runtime registered now, oldest first.
#[cfg_attr(not(taskscope_dumps), allow(dead_code))]
pub(crate) fn all() -> Vec<Handle> {
    lock().iter().map(|(_, handle)| handle.clone()).collect()
}
