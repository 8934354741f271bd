//! The `service` example (see `src/service.rs`) without the probe: what the others must
//! look like from outside.

use taskscope_examples::service;

#[tokio::main]
async fn main() -> Result<(), service::Error> {
    service::set_up_logging(None::<tracing_subscriber::layer::Identity>)?;
    service::run(service::clients_from_env()?).await
}
