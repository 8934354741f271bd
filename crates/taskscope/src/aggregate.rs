//! The probe's own thread's view: tasks, stalls and threads folded into updates, snapshots
//! for new watchers, the watchers' queues, and what the exporters are fed.

pub(crate) mod aggregator;
pub(crate) mod exporter;
pub(crate) mod folding;
pub(crate) mod recent_activity;
pub(crate) mod snapshots;
pub(crate) mod wait_graph;
pub(crate) mod watchers;
