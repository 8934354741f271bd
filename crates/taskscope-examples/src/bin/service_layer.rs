//! The `service` example (see `src/service.rs`) on the tracing route: plain
//! `#[tokio::main]`, with the probe's layer added to the app's own subscriber.

use taskscope_examples::service;

#[tokio::main]
async fn main() -> Result<(), service::Error> {
    service::set_up_logging(taskscope::layer())?;
    service::run(service::clients_from_env()?).await
}
