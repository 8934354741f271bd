//! The probe's thread and its gRPC server: connections and their limits, the token gate,
//! tokio-console's protocol.

pub(crate) mod connections;
pub(crate) mod console;
pub(crate) mod gate;
pub(crate) mod runner;
pub(crate) mod server;
pub(crate) mod tls;
