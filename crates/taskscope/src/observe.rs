//! The routes: tokio's runtime hooks and tracing spans, translated into the task lifecycle.

pub mod hooks;
pub(crate) mod init_layer;
pub(crate) mod layer;
pub(crate) mod reach;
