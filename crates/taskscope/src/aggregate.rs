//! The probe's own thread's view: tasks, stalls and threads folded into updates, snapshots
//! for new watchers, and the watchers' queues.

pub(crate) mod aggregator;
pub(crate) mod snapshots;
pub(crate) mod watchers;
