//! Where updates go besides gRPC: recordings, Prometheus metrics and OTLP log records.

pub(crate) mod metrics;
pub(crate) mod otlp;
pub(crate) mod recorder;
