//! Locks and permits on the tracing route: who holds them, who waits on them.
//!
//! tokio (with `--cfg tokio_unstable` and its `tracing` feature) gives each `Mutex`,
//! `RwLock` and `Semaphore` a `runtime.resource` span, and reports from inside it:
//! `runtime::resource::state_update` events when a guard or permit is taken or given back
//! (`locked`, `write_locked`, `current_readers`, `permits`), and a
//! `runtime::resource::poll_op` event after each poll of an acquire (`is_ready`). This
//! module reads exactly those, so that:
//!
//! * an acquire left pending records, in the polling task's own cell, that the task waits
//!   on the resource (no message: `tasks/waits.rs`);
//! * a guard or permit taken or given back is queued for the aggregator as a change of the
//!   resource's holders, with the task polling at that moment.
//!
//! What it leaves off, and why: tokio's `async_op` spans (one per `lock()` call, entered at
//! every poll of it, where console-subscriber spends most of its per-operation cost: they
//! only re-tell which resource an operation is on, which the resource span already says);
//! the semaphore inside a `Mutex` or `RwLock` (their own events say more); `Sleep`,
//! `Interval`, `oneshot` and `Barrier` (nobody holds a timer, and a `oneshot`'s sender is
//! owned, not held, so none of them can be a wait-for edge). A `Semaphore`'s inner
//! semaphore is kept, for its capacity and for permits given back to the pool.

use std::cell::Cell;
use std::fmt::{self, Write as _};

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id};
use tracing_core::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{Extensions, LookupSpan};

use crate::base::{clock, intern};
use crate::tasks::shared::Shared;
use crate::tasks::threads;
use crate::tasks::waits::{ResourceEvent, ResourceKind, WaitTarget};

/// The module tokio's semaphore lives in: its span is kept only under a `Semaphore`'s.
const INNER_SEMAPHORE: &str = "tokio::sync::batch_semaphore";

thread_local! {
    /// Kept resource spans this thread is inside now. tokio reports every change of a
    /// resource from inside its span, so an event seen outside all of them is not one the
    /// probe keeps, and is let go without looking its span up. The same callsites report
    /// for a bounded channel's semaphore, whose span the probe declines: that is a send
    /// and a receive of every message, which must not pay a registry lookup each.
    static INSIDE: Cell<u32> = const { Cell::new(0) };
}

/// A span was entered on this thread; `extensions` are its own.
pub(crate) fn entered(extensions: &Extensions<'_>) {
    if extensions.get::<Tracked>().is_some() {
        let _ = INSIDE.try_with(|inside| inside.set(inside.get() + 1));
    }
}

/// A span was exited on this thread; `extensions` are its own.
pub(crate) fn exited(extensions: &Extensions<'_>) {
    if extensions.get::<Tracked>().is_some() {
        let _ = INSIDE.try_with(|inside| inside.set(inside.get().saturating_sub(1)));
    }
}

/// Whether this thread is inside a kept resource's span now.
pub(crate) fn inside_kept_resource() -> bool {
    INSIDE.try_with(|inside| inside.get() > 0).unwrap_or(false)
}

/// A resource span the probe keeps: tokio's `Mutex`, `RwLock`, `Semaphore`, and the
/// semaphore inside a `Semaphore` (decided per span by [`wants_inner_semaphore`]).
pub(crate) fn is_resource_span(meta: &Metadata<'_>) -> bool {
    meta.is_span()
        && meta.name() == "runtime.resource"
        && matches!(
            meta.target(),
            "tokio::sync::mutex"
                | "tokio::sync::rwlock"
                | "tokio::sync::semaphore"
                | INNER_SEMAPHORE
        )
}

/// Whether a resource span's callsite has to be asked per span ([`wants_inner_semaphore`]).
pub(crate) fn is_inner_semaphore(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.target() == INNER_SEMAPHORE
}

/// tokio's semaphore span is wanted only when created inside a `Semaphore`'s span: under a
/// `Mutex` or `RwLock` it would cost a span per lock and an enter per acquire poll for
/// nothing their own events do not say.
pub(crate) fn wants_inner_semaphore<S>(ctx: &Context<'_, S>) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    ctx.lookup_current()
        .is_some_and(|span| span.metadata().target() == "tokio::sync::semaphore")
}

/// An event that may change a resource: tokio's state updates and poll results from the
/// modules of the kept resources (the same targets come from timers and channels too).
pub(crate) fn is_resource_event(meta: &Metadata<'_>) -> bool {
    meta.is_event()
        && matches!(
            meta.target(),
            "runtime::resource::state_update" | "runtime::resource::poll_op"
        )
        && meta.module_path().is_some_and(|module| {
            module.starts_with("tokio::sync::mutex")
                || module.starts_with("tokio::sync::rwlock")
                || module.starts_with("tokio::sync::semaphore")
                || module.starts_with(INNER_SEMAPHORE)
                || module.starts_with("tokio::util::trace")
        })
}

/// Kept in a resource span's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tracked {
    /// A `Mutex`, `RwLock` or `Semaphore`.
    Resource { id: u64, kind: ResourceKind },
    /// The semaphore inside the `Semaphore` with this id.
    InnerOf { id: u64 },
}

/// A resource span was created: remember it, and tell the aggregator.
pub(crate) fn new_span<S>(shared: &Shared, attrs: &Attributes<'_>, id: &Id, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = ctx.span(id) else { return };
    if is_inner_semaphore(attrs.metadata()) {
        let outer = ctx
            .lookup_current()
            .and_then(|outer| outer.extensions().get::<Tracked>().copied());
        if let Some(Tracked::Resource { id, .. }) = outer {
            span.extensions_mut().insert(Tracked::InnerOf { id });
        }
        return;
    }
    let mut fields = Fields::default();
    attrs.record(&mut fields);
    let kind = match attrs.metadata().target() {
        "tokio::sync::mutex" => ResourceKind::Mutex,
        "tokio::sync::rwlock" => ResourceKind::RwLock,
        _ => ResourceKind::Semaphore,
    };
    let resource = shared.resources.next_id();
    span.extensions_mut()
        .insert(Tracked::Resource { id: resource, kind });
    shared.resource_event(ResourceEvent::Created {
        id: resource,
        kind,
        file: fields.file.unwrap_or_else(|| intern::file("<unknown>")),
        line: fields.line,
        column: fields.column,
    });
}

/// A resource span closed (the resource was dropped). `true` when it was one.
pub(crate) fn closed<S>(shared: &Shared, id: &Id, ctx: &Context<'_, S>) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let tracked = ctx
        .span(id)
        .and_then(|span| span.extensions().get::<Tracked>().copied());
    match tracked {
        Some(Tracked::Resource { id, .. }) => {
            shared.resource_event(ResourceEvent::Closed { id });
            true
        }
        Some(Tracked::InnerOf { .. }) => true,
        None => false,
    }
}

/// A state update or poll result inside a resource span.
pub(crate) fn event<S>(shared: &Shared, event: &Event<'_>, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if !inside_kept_resource() || crate::tasks::dumping::is_tracing() {
        // Not a kept resource's; or a dump re-polling a waiter: tokio's, not the app's.
        return;
    }
    let Some(tracked) = ctx
        .event_span(event)
        .and_then(|span| span.extensions().get::<Tracked>().copied())
    else {
        return;
    };
    let mut fields = Fields::default();
    event.record(&mut fields);
    let now = clock::now_ns();
    let task = threads::with_local(|local| local.current_task()).unwrap_or(0);
    let change = match tracked {
        Tracked::InnerOf { id } => match fields.permits_op {
            Some(Op::Override) => fields
                .permits
                .map(|permits| ResourceEvent::Capacity { id, permits }),
            Some(Op::Add) => Some(ResourceEvent::Released { id, task }),
            _ => None,
        },
        Tracked::Resource { id, kind } => match fields.change(kind) {
            Some(Change::Pending) => {
                wait_on(task, WaitTarget::Resource(id), now);
                None
            }
            Some(Change::Acquired) => Some(ResourceEvent::Acquired {
                id,
                task,
                at_ns: now,
            }),
            Some(Change::Released) => Some(ResourceEvent::Released { id, task }),
            None => None,
        },
    };
    if let Some(change) = change {
        shared.resource_event(change);
    }
}

/// The task polling on this thread (`task`, 0 for none) is being left waiting on `target`.
pub(crate) fn wait_on(task: u64, target: WaitTarget, now_ns: u64) {
    if task == 0 {
        return;
    }
    threads::with_local(|local| {
        local.with_polling_task(task, |cell| cell.record_wait(target, now_ns))
    });
}

/// What an event says happened to a resource's holders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// An acquire was polled and is not done: the task waits.
    Pending,
    Acquired,
    Released,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Override,
}

impl Op {
    fn parse(text: &str) -> Option<Self> {
        match text.trim_matches('"') {
            "add" => Some(Self::Add),
            "sub" => Some(Self::Sub),
            "override" => Some(Self::Override),
            _ => None,
        }
    }
}

/// The fields of resource spans and their events that matter here.
#[derive(Default)]
struct Fields {
    file: Option<&'static str>,
    line: u32,
    column: u32,
    locked: Option<bool>,
    write_locked: Option<bool>,
    readers_op: Option<Op>,
    permits: Option<u64>,
    permits_op: Option<Op>,
    is_ready: Option<bool>,
}

impl Fields {
    fn change(&self, kind: ResourceKind) -> Option<Change> {
        match self.is_ready {
            Some(false) => return Some(Change::Pending),
            // Only a semaphore's acquire says nothing else when it succeeds; a lock says
            // `locked` or `write_locked` or `current_readers` right after.
            Some(true) if kind == ResourceKind::Semaphore => return Some(Change::Acquired),
            Some(true) => return None,
            None => {}
        }
        if let Some(locked) = self.locked.or(self.write_locked) {
            return Some(if locked {
                Change::Acquired
            } else {
                Change::Released
            });
        }
        match self.readers_op {
            Some(Op::Add) => Some(Change::Acquired),
            Some(Op::Sub) => Some(Change::Released),
            _ => None,
        }
    }
}

impl Visit for Fields {
    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            "locked" => self.locked = Some(value),
            "write_locked" => self.write_locked = Some(value),
            "is_ready" => self.is_ready = Some(value),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "loc.line" => self.line = value as u32,
            "loc.col" => self.column = value as u32,
            "permits" => self.permits = Some(value),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, value.max(0) as u64);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "loc.file" => self.file = Some(intern::file(value)),
            "current_readers.op" => self.readers_op = Op::parse(value),
            "permits.op" => self.permits_op = Op::parse(value),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !matches!(field.name(), "current_readers.op" | "permits.op") {
            return;
        }
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.record_str(field, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields {
        Fields::default()
    }

    #[test]
    fn a_pending_acquire_is_a_wait_and_a_lock_is_taken_only_by_its_state_update() {
        let pending = Fields {
            is_ready: Some(false),
            ..fields()
        };
        assert_eq!(pending.change(ResourceKind::Mutex), Some(Change::Pending));
        let ready = Fields {
            is_ready: Some(true),
            ..fields()
        };
        assert_eq!(ready.change(ResourceKind::Mutex), None);
        assert_eq!(
            ready.change(ResourceKind::Semaphore),
            Some(Change::Acquired)
        );
        let locked = Fields {
            locked: Some(true),
            ..fields()
        };
        assert_eq!(locked.change(ResourceKind::Mutex), Some(Change::Acquired));
        let unlocked = Fields {
            write_locked: Some(false),
            ..fields()
        };
        assert_eq!(
            unlocked.change(ResourceKind::RwLock),
            Some(Change::Released)
        );
        let read = Fields {
            readers_op: Some(Op::Add),
            ..fields()
        };
        assert_eq!(read.change(ResourceKind::RwLock), Some(Change::Acquired));
    }
}
