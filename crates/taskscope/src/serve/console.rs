//! Serving tokio-console's protocol (console-api) next to taskscope's, so that tokio-console
//! (or `taskscope attach --protocol console`) can attach to an app running the probe:
//! `TASKSCOPE_CONSOLE_BIND` / [`Builder::console_bind`](crate::Builder::console_bind),
//! off by default, and only in builds with the `console` cargo feature.
//!
//! It embeds console-subscriber rather than re-implementing its aggregation: its layer goes
//! into the same subscriber as the probe's (each behind its own per-layer filter, so neither
//! enables nor vetoes a callsite for the other or for the app's logs), and its gRPC server
//! and aggregator run on a thread and runtime of their own, which no layer observes.
//!
//! The price is console-subscriber's own: it records every poll, waker operation, resource
//! and async operation tokio reports, on the app's threads, which costs far more per poll
//! than the probe does (see `docs/interop.md` and the bench's `console` mode). It is for
//! teams that keep tokio-console, switched on knowingly.

use tracing_core::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::base::config::Bind;

/// console-subscriber's layer, serving on `bind`; `None` when off or impossible (said on
/// stderr). Call at most once per process: the layer is only useful installed. An
/// address beyond loopback needs `allow_remote`, as the probe's own does.
pub(crate) fn layer<S>(
    bind: &Bind,
    retention: std::time::Duration,
    allow_remote: bool,
) -> Option<impl Layer<S>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if *bind == Bind::Off {
        return None;
    }
    #[cfg(feature = "console")]
    return enabled::layer::<S>(bind, retention, allow_remote);
    #[cfg(not(feature = "console"))]
    return enabled::layer(bind, retention, allow_remote);
}

#[cfg(not(feature = "console"))]
mod enabled {
    use super::*;

    pub(super) fn layer(
        bind: &Bind,
        _retention: std::time::Duration,
        _allow_remote: bool,
    ) -> Option<tracing_subscriber::layer::Identity> {
        crate::base::diag::warn(&format!(
            "TASKSCOPE_CONSOLE_BIND={bind} is ignored: this build of taskscope has no \
             tokio-console support; enable the `console` feature of the `taskscope` crate"
        ));
        None
    }
}

#[cfg(feature = "console")]
mod enabled {
    use tracing_core::{Interest, Metadata};
    use tracing_subscriber::filter::{DynFilterFn, Filtered};
    use tracing_subscriber::layer::Context;

    use super::*;
    use crate::serve::server::Listener;

    type Enabled<S> = fn(&Metadata<'_>, &Context<'_, S>) -> bool;
    type Callsite = fn(&'static Metadata<'static>) -> Interest;
    type ConsoleFilter<S> = DynFilterFn<S, Enabled<S>, Callsite>;

    pub(super) fn layer<S>(
        bind: &Bind,
        retention: std::time::Duration,
        allow_remote: bool,
    ) -> Option<Filtered<console_subscriber::ConsoleLayer, ConsoleFilter<S>, S>>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if !cfg!(tokio_unstable) {
            // console-subscriber refuses (panics) without it; the probe says why elsewhere.
            crate::base::diag::warn(&format!(
                "TASKSCOPE_CONSOLE_BIND={bind} is ignored: tokio-console needs the app built \
                 with RUSTFLAGS=\"--cfg tokio_unstable\""
            ));
            return None;
        }
        let listener = match crate::serve::server::bind(bind, allow_remote) {
            Ok(Some(listener)) => listener,
            Ok(None) => return None,
            Err(e) => {
                crate::base::diag::warn(&format!(
                    "cannot listen on {bind} for tokio-console: {e}; the app runs without it \
                     (set TASKSCOPE_CONSOLE_BIND to a free address, unix:/path, or off)"
                ));
                return None;
            }
        };
        // The environment is not read (`with_default_env` panics on a bad TOKIO_CONSOLE_BIND):
        // taskscope's own settings decide.
        let (layer, server) = console_subscriber::ConsoleLayer::builder()
            .retention(retention)
            .build();
        let parts = server.into_parts();
        let started = std::thread::Builder::new()
            .name("taskscope-console".into())
            .spawn(move || serve(listener, parts));
        if let Err(e) = started {
            crate::base::diag::warn(&format!("cannot start the tokio-console thread: {e}"));
            return None;
        }
        let filter =
            DynFilterFn::new(enabled as Enabled<S>).with_callsite_filter(callsite as Callsite);
        Some(layer.with_filter(filter))
    }

    /// What console-subscriber needs: tokio's task, resource and async-op spans and its
    /// waker and state events (console-subscriber's own filter, as `console_subscriber::init`
    /// installs it). Everything else is `never` for this layer alone.
    fn callsite(meta: &'static Metadata<'static>) -> Interest {
        let wanted = if meta.is_event() {
            meta.target().starts_with("runtime") || meta.target().starts_with("tokio")
        } else {
            meta.name().starts_with("runtime.") || meta.target().starts_with("tokio")
        };
        if wanted {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    /// Spans created by the probe (its own runtime, its throw-away spawns) stay out of
    /// tokio-console's task list, as they stay out of taskscope's.
    fn enabled<S>(meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        meta.is_event() || !crate::base::quiet::is_quiet()
    }

    /// The console thread: console-subscriber's aggregator and gRPC server. Nothing it does
    /// is traced (`quiet_forever`; console-subscriber's own `spawn` does the same), so it
    /// never shows up in either tool.
    fn serve(listener: Listener, parts: console_subscriber::ServerParts) {
        crate::base::quiet::quiet_forever();
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                crate::base::diag::warn(&format!("cannot start the tokio-console runtime: {e}"));
                return;
            }
        };
        let console_subscriber::ServerParts {
            instrument_server,
            aggregator,
            ..
        } = parts;
        runtime.block_on(async move {
            let aggregating = tokio::spawn(aggregator.run());
            // No token here, but the gate proves a connection by its first call, which
            // keeps a console client's place when silent connections crowd the limit.
            let gate = crate::serve::gate::Gate::new(
                instrument_server,
                crate::base::auth::Token::default(),
            );
            let router = crate::serve::server::server().add_service(gate);
            let connections = crate::base::config::Limits::DEFAULT.max_connections;
            crate::serve::server::serve_router(
                router,
                listener,
                connections,
                "the tokio-console server",
            )
            .await;
            aggregating.abort();
        });
    }
}
