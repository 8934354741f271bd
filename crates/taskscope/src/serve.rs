//! The probe's thread and its endpoints: the gRPC server, connections and their limits,
//! the token gate, the metrics endpoint, tokio-console's protocol.

pub(crate) mod command;
pub(crate) mod connections;
pub(crate) mod console;
pub(crate) mod gate;
pub(crate) mod metrics;
pub(crate) mod runner;
pub(crate) mod server;
pub(crate) mod tls;
