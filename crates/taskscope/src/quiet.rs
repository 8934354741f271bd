//! Spans the probe must not record: its own.
//!
//! The probe runs tonic on a tokio runtime of its own and, to tell a shutdown from an
//! abort, sometimes spawns a throw-away task onto the app's runtime. tokio instruments
//! those tasks like any other; recording them would show the probe's machinery in the
//! app's task list. A thread-local flag marks the moments (and the probe's own threads)
//! whose spawns are ignored.

use std::cell::Cell;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Whether spans created on this thread right now belong to the probe.
#[inline]
pub(crate) fn is_quiet() -> bool {
    QUIET.try_with(Cell::get).unwrap_or(false)
}

/// Marks the calling thread as the probe's own for the rest of its life.
pub(crate) fn quiet_forever() {
    let _ = QUIET.try_with(|q| q.set(true));
}

/// Runs `f` with spans on this thread ignored.
pub(crate) fn while_quiet<R>(f: impl FnOnce() -> R) -> R {
    let was = QUIET.try_with(|q| q.replace(true)).unwrap_or(false);
    let result = f();
    let _ = QUIET.try_with(|q| q.set(was));
    result
}
