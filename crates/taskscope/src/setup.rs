//! Installing, starting and stopping the probe: the builder, the one running probe, the
//! runtime's shutdown and the process's exit.

pub(crate) mod builder;
pub(crate) mod exit;
pub mod hooks;
pub(crate) mod probe;
pub(crate) mod shutdown;
