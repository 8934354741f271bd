//! The tracing layer: turns tokio's own instrumentation into per-task state.
//!
//! tokio (built with `--cfg tokio_unstable` and its `tracing` feature) wraps every task in
//! a `runtime.spawn` span that is entered for each poll, and, when asked, emits a
//! `tokio::task::waker` event for every waker clone, drop and wake. This layer listens to
//! exactly those callsites, plus the spans and events of tokio's locks and semaphores
//! (`resources.rs`), and nothing else: its [`ProbeFilter`] tells tracing once per
//! callsite, so every other callsite of the app (and tokio's other resource spans) stays
//! as cheap as if the probe were absent, and the app's own log filtering is untouched.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id};
use tracing_core::{Event, Interest, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::base::{intern, quiet};
use crate::observe::resources;
use crate::tasks::cell::{Kind, TaskCell, WakerOp};
use crate::tasks::shared::Shared;
use crate::tasks::{lifecycle, outcome, threads};

/// The taskscope layer, already wrapped in its own per-layer filter so that composing it
/// with other layers never changes what they see.
pub type ProbeLayer<S> = tracing_subscriber::filter::Filtered<TaskLayer, ProbeFilter, S>;

/// Records tokio tasks into the probe. Use it through [`ProbeLayer`].
pub struct TaskLayer {
    shared: Arc<Shared>,
}

/// Selects tokio's task spans (and waker events when waker tracking is on, and the spans
/// and events of locks and semaphores on the tracing route).
pub struct ProbeFilter {
    /// [`ProbeFilter::wants`] of each callsite, kept at its registration.
    decided: crate::observe::decided::Decided,
    wakers: bool,
    /// Off on the hooks route: tokio then creates no task spans at all, which is most of
    /// the saving.
    task_spans: bool,
    /// Holders of locks and permits (`resources.rs`): with the task spans, unless turned
    /// off (`TASKSCOPE_HOLDERS`); off, tokio creates no resource span for the probe.
    resources: bool,
}

/// The probe's layer; `task_spans` is off on the hooks route, where tokio's hooks report
/// the tasks instead.
pub(crate) fn new<S>(shared: Arc<Shared>, task_spans: bool) -> ProbeLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let wakers = shared.config.waker_tracking();
    let holders = shared.config.holder_tracking();
    TaskLayer::new(shared).with_filter(ProbeFilter::new(wakers, task_spans, holders))
}

pub(crate) fn is_task_span(meta: &Metadata<'_>) -> bool {
    meta.is_span()
        && meta.name() == "runtime.spawn"
        && matches!(meta.target(), "tokio::task" | "tokio::task::blocking")
}

pub(crate) fn is_waker_event(meta: &Metadata<'_>) -> bool {
    meta.is_event() && meta.target() == "tokio::task::waker"
}

impl ProbeFilter {
    pub(crate) fn new(wakers: bool, task_spans: bool, holders: bool) -> Self {
        Self {
            decided: Default::default(),
            wakers,
            task_spans,
            resources: task_spans && holders,
        }
    }

    /// Whether the probe takes spans or events of `meta`'s callsite (in some places:
    /// [`ProbeFilter::wants_here`]). Looked up when the callsite's registration kept it.
    #[inline]
    pub(crate) fn wants(&self, meta: &Metadata<'_>) -> bool {
        match self.decided.get(meta) {
            Some(wanted) => wanted,
            None => self.decide(meta),
        }
    }

    fn decide(&self, meta: &Metadata<'_>) -> bool {
        (self.task_spans && is_task_span(meta))
            || (self.wakers && is_waker_event(meta))
            || (self.resources
                && (resources::is_resource_span(meta) || resources::is_resource_event(meta)))
    }

    /// What tracing is told once per callsite: `sometimes` for what is kept depending on
    /// where it happens ([`ProbeFilter::wants_here`]): tokio's semaphore span, and the
    /// resource events, whose callsites a bounded channel's semaphore shares with a
    /// `Semaphore`'s. Asked per event, the probe declines a channel's before tracing
    /// builds the event at all.
    pub(crate) fn interest(&self, meta: &'static Metadata<'static>) -> Interest {
        let wanted = self.decide(meta);
        self.decided.keep(meta, wanted);
        if !wanted {
            Interest::never()
        } else if resources::is_inner_semaphore(meta) || resources::is_resource_event(meta) {
            Interest::sometimes()
        } else {
            Interest::always()
        }
    }

    /// [`ProbeFilter::wants`], with the context of this very span or event.
    pub(crate) fn wants_here<S>(&self, meta: &Metadata<'_>, ctx: &Context<'_, S>) -> bool
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // The events asked about here are resource events (waker events are `always`):
        // one outside every kept resource's span is not one the probe keeps. Checked
        // first, being one thread-local read.
        if meta.is_event() && !is_waker_event(meta) && !resources::inside_kept_resource() {
            return false;
        }
        self.wants(meta)
            && (!resources::is_inner_semaphore(meta) || resources::wants_inner_semaphore(ctx))
    }
}

impl<S> Filter<S> for ProbeFilter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, meta: &Metadata<'_>, ctx: &Context<'_, S>) -> bool {
        self.wants_here(meta, ctx)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        self.interest(meta)
    }
}

/// What a task's span carries in its extensions: the task's cell, and the two facts of it
/// the start of a poll needs, kept beside the pointer so that they are read from the line
/// the pointer is read from rather than from the cell, which may be cold
/// (`threads::Polled`).
struct SpanTask {
    cell: Arc<TaskCell>,
    id: u64,
    can_stall: bool,
}

impl TaskLayer {
    fn cell<S>(id: &Id, ctx: &Context<'_, S>) -> Option<Arc<TaskCell>>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        Self::cell_of(&ctx.span(id)?)
    }

    fn cell_of<'a, R: LookupSpan<'a>>(
        span: &tracing_subscriber::registry::SpanRef<'a, R>,
    ) -> Option<Arc<TaskCell>> {
        Some(span.extensions().get::<SpanTask>()?.cell.clone())
    }
}

impl<S> Layer<S> for TaskLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.new_span(attrs, id, &ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.entered(id, &ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.exited(id, &ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.closed(&id, &ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if is_waker_event(event.metadata()) {
            self.waker_event(event, &ctx);
        } else {
            self.resource_event(event, &ctx);
        }
    }
}

/// Whose a span is, as far as the combined layer `init()` installs needs to know: the
/// probe's (a tokio task's, or one no longer known), or the app's, for its log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanOwner {
    Probe,
    App,
}

impl SpanOwner {
    fn of(meta: &Metadata<'_>) -> Self {
        if is_task_span(meta) || resources::is_resource_span(meta) {
            SpanOwner::Probe
        } else {
            SpanOwner::App
        }
    }
}

/// The tracing route's translation of span callbacks into the task's life
/// (`lifecycle.rs`), shared by [`TaskLayer`] and the combined layer `init()` installs.
impl TaskLayer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// A span was created: when it is a tokio task's, start tracking the task.
    pub(crate) fn new_span<S>(&self, attrs: &Attributes<'_>, id: &Id, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if quiet::is_quiet() {
            return;
        }
        if resources::is_resource_span(attrs.metadata()) {
            // Turned off, a resource span reaches here only for the app's own log output.
            if self.shared.config.holder_tracking() {
                resources::new_span(&self.shared, attrs, id, ctx);
            }
            return;
        }
        if !is_task_span(attrs.metadata()) {
            return;
        }
        let mut fields = SpawnFields::default();
        attrs.record(&mut fields);
        let Some(kind) = fields.kind else { return };
        if kind == Kind::BlockOn && fields.file.is_some_and(is_tokio_internal) {
            return;
        }
        let spawn = lifecycle::Spawn {
            id: fields.task_id,
            kind,
            name: fields.name,
            file: fields.file.unwrap_or_else(|| intern::file("<unknown>")),
            line: fields.line,
            column: fields.column,
        };
        lifecycle::spawned(&self.shared, spawn, |cell| {
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(SpanTask {
                    cell: cell.clone(),
                    id: cell.identity.id,
                    can_stall: cell.can_stall(),
                });
            }
        });
    }

    /// Span `id` was entered: when it is a task's, a poll of that task starts.
    pub(crate) fn entered<S>(&self, id: &Id, ctx: &Context<'_, S>) -> SpanOwner
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.span(id) else {
            return SpanOwner::Probe;
        };
        let extensions = span.extensions();
        let Some(task) = extensions.get::<SpanTask>() else {
            resources::entered(&extensions);
            return SpanOwner::of(span.metadata());
        };
        if crate::tasks::dumping::is_tracing() {
            // A dump re-polling the task to see where it waits: not one of the app's polls.
            return SpanOwner::Probe;
        }
        threads::with_local(|local| {
            // SAFETY: the span's extensions hold the cell until the span closes, which
            // tokio does only after the span's last exit.
            unsafe {
                lifecycle::poll_started(
                    &self.shared,
                    local,
                    threads::Polled::known(&task.cell, task.id, task.can_stall),
                    id.into_u64(),
                )
            }
        });
        SpanOwner::Probe
    }

    /// Span `id` was exited: when it is a task's, that task's poll returns.
    ///
    /// The cell comes from this thread's poll stack, where the enter left it, rather than
    /// from a second registry lookup (the lookup is only the fallback).
    pub(crate) fn exited<S>(&self, id: &Id, ctx: &Context<'_, S>) -> SpanOwner
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let dump_repoll = crate::tasks::dumping::is_tracing();
        if !dump_repoll && self.exited_from_frame(id, ctx) {
            return SpanOwner::Probe;
        }
        let Some(span) = ctx.span(id) else {
            return SpanOwner::Probe;
        };
        let Some(cell) = Self::cell_of(&span) else {
            resources::exited(&span.extensions());
            return SpanOwner::of(span.metadata());
        };
        drop(span);
        if !dump_repoll {
            threads::with_local(|local| self.poll_ended(local, &cell, || Some(cell.clone())));
        }
        SpanOwner::Probe
    }

    /// `true` when span `id` is the poll on top of this thread's poll stack, which has then
    /// been ended.
    fn exited_from_frame<S>(&self, id: &Id, ctx: &Context<'_, S>) -> bool
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        threads::with_local(|local| {
            local.with_polling_span(id.into_u64(), |cell| {
                self.poll_ended(local, cell, || Self::cell(id, ctx));
            })
        })
        .flatten()
        .is_some()
    }

    /// The poll of `cell` returns; `owned` gives the span's owning pointer to the cell,
    /// needed only when the task still has to be announced.
    fn poll_ended(
        &self,
        local: &threads::Local,
        cell: &TaskCell,
        owned: impl FnOnce() -> Option<Arc<TaskCell>>,
    ) {
        if lifecycle::poll_ended(&self.shared, local, cell).is_some() {
            lifecycle::announce_late(&self.shared, cell, lifecycle::Via::ThisThread, owned);
        }
    }

    /// Span `id` closed: when it is a task's, the task has ended.
    pub(crate) fn closed<S>(&self, id: &Id, ctx: &Context<'_, S>) -> SpanOwner
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.span(id) else {
            return SpanOwner::Probe;
        };
        let Some(cell) = Self::cell_of(&span) else {
            let owner = SpanOwner::of(span.metadata());
            drop(span);
            if owner == SpanOwner::Probe {
                resources::closed(&self.shared, id, ctx);
            }
            return owner;
        };
        drop(span);
        cell.uncount_drop();
        let end = outcome::decide(&cell);
        lifecycle::ended(&self.shared, &cell, end);
        SpanOwner::Probe
    }

    /// A state update or poll result of a lock or semaphore (`resources.rs`).
    pub(crate) fn resource_event<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if !quiet::is_quiet()
            && self.shared.config.holder_tracking()
            && resources::is_resource_event(event.metadata())
        {
            resources::event(&self.shared, event, ctx);
        }
    }

    /// A `tokio::task::waker` event (other events are ignored).
    pub(crate) fn waker_event<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut fields = WakerFields::default();
        event.record(&mut fields);
        let (Some(op), Some(span_id)) = (fields.op, fields.span_id) else {
            return;
        };
        let Some(span_id) = std::num::NonZeroU64::new(span_id) else {
            return;
        };
        if let Some(cell) = Self::cell(&Id::from_non_zero_u64(span_id), ctx) {
            lifecycle::waker_op(&self.shared, &cell, op);
        }
    }
}

/// Whether a `block_on` was called by tokio itself: `Handle::dump` on a multi-thread
/// runtime runs a throw-away current-thread runtime on a thread of its own, whose body is
/// no task of the app's.
fn is_tokio_internal(file: &str) -> bool {
    file.ends_with("src/runtime/handle.rs")
        && file.rsplit(['/', '\\']).any(|dir| {
            dir.starts_with("tokio-") && dir[6..].starts_with(|c: char| c.is_ascii_digit())
        })
}

/// The fields of tokio's `runtime.spawn` span.
#[derive(Default)]
struct SpawnFields {
    kind: Option<Kind>,
    name: Option<Box<str>>,
    task_id: u64,
    file: Option<&'static str>,
    line: u32,
    column: u32,
}

impl Visit for SpawnFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "task.id" => self.task_id = value,
            "loc.line" => self.line = value as u32,
            "loc.col" => self.column = value as u32,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, value as u64);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "loc.file" => self.file = Some(intern::file(value)),
            "kind" => self.kind = Kind::from_tokio(value),
            "task.name" if !value.is_empty() => self.name = Some(value.into()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // tokio records `kind` and `task.name` with `%` (Display), which arrives here.
        if !matches!(field.name(), "kind" | "task.name") {
            return;
        }
        let mut text = SmallText::default();
        let _ = write!(text, "{value:?}");
        self.record_str(field, text.as_str());
    }
}

/// The fields of tokio's `tokio::task::waker` event.
#[derive(Default)]
struct WakerFields {
    op: Option<WakerOp>,
    span_id: Option<u64>,
}

impl Visit for WakerFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "task.id" {
            self.span_id = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "op" {
            self.op = WakerOp::from_tokio(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "op" {
            let mut text = SmallText::default();
            let _ = write!(text, "{value:?}");
            self.op = WakerOp::from_tokio(text.as_str().trim_matches('"'));
        }
    }
}

/// A fixed buffer for formatting short field values without allocating on the spawn
/// path; longer text is cut at a character boundary.
struct SmallText {
    buf: [u8; 128],
    len: usize,
}

impl Default for SmallText {
    fn default() -> Self {
        Self {
            buf: [0; 128],
            len: 0,
        }
    }
}

impl SmallText {
    fn as_str(&self) -> &str {
        // Only whole `str`s (or char-boundary prefixes of them) are ever copied in.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for SmallText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::is_tokio_internal;

    #[test]
    fn only_tokios_own_block_on_is_tokio_internal() {
        let registry = "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f";
        assert!(is_tokio_internal(&format!(
            "{registry}/tokio-1.54.1/src/runtime/handle.rs"
        )));
        assert!(!is_tokio_internal(&format!(
            "{registry}/tokio-util-0.7.1/src/runtime/handle.rs"
        )));
        assert!(!is_tokio_internal("src/runtime/handle.rs"));
        assert!(!is_tokio_internal(&format!(
            "{registry}/tokio-1.54.1/src/main.rs"
        )));
    }
}
