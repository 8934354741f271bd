//! Prometheus metrics: stalls, leaks and the probe's own health as `GET /metrics`
//! (`TASKSCOPE_METRICS_BIND`, off by default), so that a fleet can alert on them.
//!
//! The aggregator feeds a [`Tally`] with what it takes in anyway and refreshes it at its
//! publish cadence (`tally.rs`); the endpoint (`http.rs`) serves the latest refresh as
//! text (`exposition.rs`); series are per spawn site, with their number bounded
//! (`sites.rs`). Nothing here runs on an app thread. `docs/monitoring.md` says what every
//! metric means.

mod exposition;
mod http;
mod sites;
mod tally;

use std::sync::Arc;

pub(crate) use exposition::Board;
pub(crate) use tally::Tally;

use crate::base::config::{Bind, Config};
use crate::serve::server::Listener;

/// A task's spawn site as the metrics label it: `file:line:column`.
pub(crate) fn site_label(identity: &crate::tasks::cell::Identity) -> String {
    sites::label(sites::of(identity))
}

/// Binds the metrics address on the thread that starts the probe, so that a busy port is
/// reported at once; `None` when the endpoint is off or cannot listen (the app runs on).
pub(crate) fn bind(config: &Config) -> Option<Listener> {
    let bind = &config.metrics.bind;
    let bound = match bind {
        Bind::Tcp(addr) if !addr.ip().is_loopback() => {
            crate::serve::server::refuse_remote(addr, config.allow_remote).inspect(|()| {
                crate::base::diag::warn(&format!(
                    "serving metrics on {addr}, beyond this host (TASKSCOPE_ALLOW_REMOTE): \
                     anyone who reaches it can read them, without a token"
                ));
            })
        }
        _ => Ok(()),
    }
    .and_then(|()| crate::serve::server::bind_listener(bind));
    bound.unwrap_or_else(|e| {
        crate::base::diag::warn(&format!(
            "cannot serve metrics on {bind}: {e}; the probe runs without its metrics \
             endpoint (set TASKSCOPE_METRICS_BIND to a free address, or off)"
        ));
        None
    })
}

/// Starts serving on the probe's runtime; returns the tally the aggregator keeps.
pub(crate) fn start(config: &Config, listener: Listener) -> Tally {
    let board = Arc::new(Board::default());
    tokio::spawn(http::serve(
        listener,
        board.clone(),
        config.limits.max_connections,
    ));
    Tally::new(config, board)
}
