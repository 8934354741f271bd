//! Tasks and logs the probe must not show: its own.
//!
//! The probe runs tonic on a tokio runtime of its own and, to tell a shutdown from an
//! abort, sometimes spawns a throw-away task onto the app's runtime. tokio instruments
//! those tasks like any other; recording them would show the probe's machinery in the
//! app's task list. A thread-local flag marks the moments (and the probe's own threads)
//! whose spawns are ignored, on either route.
//!
//! The probe's own threads also get a tracing dispatcher that drops everything, so that
//! what tokio, tonic and hyper log while serving a client never reaches the app's
//! subscriber: an app at `RUST_LOG=trace` logs what it logged without the probe.

use std::cell::Cell;
use std::sync::OnceLock;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Dispatch, Event, Interest, LevelFilter, Metadata, Subscriber};

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Whether spans created on this thread right now belong to the probe.
#[inline]
pub(crate) fn is_quiet() -> bool {
    QUIET.try_with(Cell::get).unwrap_or(false)
}

/// Marks the calling thread as the probe's own for the rest of its life: its spawns are
/// not the app's tasks, and its tracing output goes nowhere.
pub(crate) fn quiet_forever() {
    let _ = QUIET.try_with(|q| q.set(true));
    static DROP_ALL: OnceLock<Dispatch> = OnceLock::new();
    let drop_all = DROP_ALL.get_or_init(|| Dispatch::new(DropAll));
    // The guard would restore the global dispatcher when dropped; this thread never wants
    // it back.
    std::mem::forget(tracing::dispatcher::set_default(drop_all));
}

/// The dispatcher of the probe's own threads: takes everything, keeps nothing.
///
/// Not `Dispatch::none()`, whose `never` would poison the app's callsites: tracing caches
/// one interest per callsite for the whole process, and while a process has at most one
/// registered dispatcher it asks the *registering thread's* default. A tokio callsite
/// first reached on a probe thread would then be `never` for the app's threads too, and
/// the app (or the tracing route) would lose it for good. Registered, this dispatcher is
/// always asked, and answers so that the combined interest stays what the app's own
/// subscriber says for every callsite it wants (`always` and `always` stay `always`; a
/// callsite the app declines becomes `sometimes`, asked once per use). Its level hint is
/// `OFF`, so it never raises the process's maximum level.
struct DropAll;

impl Subscriber for DropAll {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::OFF)
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Runs `f` with spans on this thread ignored.
pub(crate) fn while_quiet<R>(f: impl FnOnce() -> R) -> R {
    let was = QUIET.try_with(|q| q.replace(true)).unwrap_or(false);
    let result = f();
    let _ = QUIET.try_with(|q| q.set(was));
    result
}
