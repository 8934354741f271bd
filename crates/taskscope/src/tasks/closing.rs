//! Which runtimes `#[taskscope::main]`/`#[taskscope::test]` are dropping now: how a task
//! ended depends on it (`observe/hooks.rs` asks), and `setup/shutdown.rs` says it.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::runtime::Handle;

/// Runtimes whose drop comes next (tokio's `Id`s), once the macros' shutdown steps are done.
#[cfg(tokio_unstable)]
static CLOSING: std::sync::Mutex<Vec<tokio::runtime::Id>> = std::sync::Mutex::new(Vec::new());
static ANY_CLOSING: AtomicBool = AtomicBool::new(false);

/// Says that the runtime of `handle` is dropped next (`setup/shutdown.rs`).
pub(crate) fn mark_closing(handle: &Handle) {
    #[cfg(tokio_unstable)]
    CLOSING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(handle.id());
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
    CLOSING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&id)
}

#[cfg(not(tokio_unstable))]
fn closing_here() -> bool {
    false
}
