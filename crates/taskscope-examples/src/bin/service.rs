//! The `service` example (see `src/service.rs`) under `#[taskscope::main]`: the hooks
//! route, with the app's own logging set up first thing in `main`.

use taskscope_examples::service;

#[taskscope::main]
async fn main() -> Result<(), service::Error> {
    service::set_up_logging(None::<tracing_subscriber::layer::Identity>)?;
    service::run(service::clients_from_env()?).await
}
