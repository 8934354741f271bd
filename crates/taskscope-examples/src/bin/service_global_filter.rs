//! The `service` example (see `src/service.rs`) with its subscriber built the way many
//! services build it: one global `EnvFilter` in front of every layer, the probe's included.
//! With `SERVICE_FILTER=per-layer` the filter goes on the log output only
//! (`fmt::layer().with_filter(…)`), the composition that lets tokio's task spans through.
//!
//! With the global filter, tokio's task spans (level `TRACE`) are filtered away before
//! they reach the probe: it must say so rather than report a healthy, empty program.

use taskscope_examples::service;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

#[tokio::main]
async fn main() -> Result<(), service::Error> {
    if std::env::var("SERVICE_FILTER").as_deref() == Ok("per-layer") {
        tracing_subscriber::registry()
            .with(fmt::layer().with_filter(EnvFilter::from_default_env()))
            .with(taskscope::layer())
            .try_init()?;
    } else {
        tracing_subscriber::registry()
            .with(EnvFilter::from_default_env())
            .with(fmt::layer())
            .with(taskscope::layer())
            .try_init()?;
    }
    service::run(service::clients_from_env()?).await
}
