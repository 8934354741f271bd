//! The one layer `init()` installs: the probe and the app's log output together.
//!
//! Composed the general way (each a layer with its own per-layer filter), every span enter
//! and exit of every task poll would be looked up in the registry once per filter, just to
//! hear that the log output does not want tokio's task spans: about a third of the probe's
//! cost per poll. Since `init()` owns the whole subscriber, it can instead route each
//! callsite to the one part that wants it, deciding interest as the union of both
//! (so neither part ever disables a callsite the other needs).
//!
//! Trade-off: `RUST_LOG` directives that filter on span fields (`[span{field=value}]`) see
//! the app's own spans but not tokio's task spans, which is what anyone writing one means.

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Interest, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::observe::layer::{ProbeFilter, SpanOwner, TaskLayer, is_task_span, is_waker_event};
use crate::observe::resources;

type LogOutput<S> = tracing_subscriber::fmt::Layer<
    S,
    tracing_subscriber::fmt::format::DefaultFields,
    tracing_subscriber::fmt::format::Format,
    fn() -> std::io::Stderr,
>;

/// What `init()`'s log output shows: `RUST_LOG`, or `info` when it is unset or invalid.
pub(crate) fn log_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The probe plus (optionally) a `RUST_LOG`-filtered log output on stderr.
pub(crate) struct InitLayer<S> {
    probe: TaskLayer,
    wants: ProbeFilter,
    log: Option<(LogOutput<S>, EnvFilter)>,
}

impl<S> InitLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    pub(crate) fn new(probe: TaskLayer, wants: ProbeFilter, logs: bool) -> Self {
        let log = logs.then(|| {
            let filter = log_filter();
            let output = tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr as fn() -> std::io::Stderr);
            (output, filter)
        });
        Self { probe, wants, log }
    }
}

impl<S> Layer<S> for InitLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        // Never only when the probe does not want it (and keeps that answer for `enabled`).
        let probe = self.wants.interest(meta);
        if !probe.is_never() {
            return probe;
        }
        match &self.log {
            Some((output, filter)) => {
                let interest = <EnvFilter as Layer<S>>::register_callsite(filter, meta);
                if interest.is_never() {
                    interest
                } else {
                    output.register_callsite(meta);
                    interest
                }
            }
            None => Interest::never(),
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        if self.wants.wants(meta) {
            return self.wants.wants_here(meta, &ctx);
        }
        self.log
            .as_ref()
            .is_some_and(|(_, filter)| <EnvFilter as Layer<S>>::enabled(filter, meta, ctx))
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // tokio's task spans are TRACE: the log filter's hint must not hide them.
        Some(LevelFilter::TRACE)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if is_task_span(attrs.metadata()) || resources::is_resource_span(attrs.metadata()) {
            self.probe.new_span(attrs, id, &ctx);
        } else if let Some((output, filter)) = &self.log {
            <EnvFilter as Layer<S>>::on_new_span(filter, attrs, id, ctx.clone());
            output.on_new_span(attrs, id, ctx);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some((output, filter)) = &self.log
            && ctx
                .metadata(id)
                .is_some_and(|m| !is_task_span(m) && !resources::is_resource_span(m))
        {
            <EnvFilter as Layer<S>>::on_record(filter, id, values, ctx.clone());
            output.on_record(id, values, ctx);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if self.probe.entered(id, &ctx) == SpanOwner::App
            && let Some((output, filter)) = &self.log
        {
            <EnvFilter as Layer<S>>::on_enter(filter, id, ctx.clone());
            output.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if self.probe.exited(id, &ctx) == SpanOwner::App
            && let Some((output, filter)) = &self.log
        {
            <EnvFilter as Layer<S>>::on_exit(filter, id, ctx.clone());
            output.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if self.probe.closed(&id, &ctx) == SpanOwner::App
            && let Some((output, filter)) = &self.log
        {
            <EnvFilter as Layer<S>>::on_close(filter, id.clone(), ctx.clone());
            output.on_close(id, ctx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if is_waker_event(event.metadata()) {
            self.probe.waker_event(event, &ctx);
        } else if resources::is_resource_event(event.metadata()) {
            self.probe.resource_event(event, &ctx);
        } else if let Some((output, _)) = &self.log {
            output.on_event(event, ctx);
        }
    }
}
