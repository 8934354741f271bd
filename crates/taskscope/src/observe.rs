//! The routes: tokio's runtime hooks and tracing spans, translated into the task lifecycle.

pub(crate) mod decided;
pub(crate) mod hooks;
pub(crate) mod init_layer;
pub(crate) mod join;
pub(crate) mod layer;
pub(crate) mod reach;
pub(crate) mod resources;
