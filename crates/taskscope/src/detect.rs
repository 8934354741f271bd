//! What the probe finds while the app runs: stalls seen by the watchdog, the stacks of
//! stalled threads, bodies and (on stable tokio) runtime workers watched from outside, and
//! task dumps.

pub(crate) mod body_watch;
pub(crate) mod dump;
pub(crate) mod running_stall;
pub(crate) mod stall_stack;
pub(crate) mod watchdog;
pub(crate) mod worker_watch;
