//! What the aggregator hands to the exporters (Prometheus metrics, OTLP records) as it
//! takes things in: a trait they implement in `export/`, so that the aggregator feeds
//! every exporter the same way and names none of them.
//!
//! Everything here runs on the probe's thread, from what the aggregator takes in anyway:
//! an exporter adds no work to an app thread.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use taskscope_api::v1;

use crate::tasks::cell::TaskCell;

/// An exporter fed by the aggregator. Every method has an empty default, so an exporter
/// says only what it wants.
pub(crate) trait Exporter: Send {
    /// A task was taken in (it may have ended already: its cell says).
    fn on_spawn(&mut self, _cell: &TaskCell, _now_ns: u64) {}

    /// A task taken in has ended.
    fn on_end(&mut self, _cell: &TaskCell) {}

    /// A stall of `task` was first seen (still running, or just ended).
    fn on_stall_start(&mut self, _task: u64) {}

    /// A stall ended, as clients will see it; `task` is its task's cell while the task is
    /// live.
    fn on_stall_end(&mut self, _stall: &v1::Stall, _task: Option<&TaskCell>, _now_ns: u64) {}

    /// The aggregator publishes (at its publish cadence, and at once for a stall).
    fn on_publish(&mut self, _now: &Published<'_>) {}
}

/// The aggregator's state as it publishes.
pub(crate) struct Published<'a> {
    pub(crate) now_ns: u64,
    pub(crate) live: &'a HashMap<u64, Arc<TaskCell>>,
    /// The tasks of the stalls still running.
    pub(crate) stalled_tasks: &'a [u64],
    /// Ended stalls, newest last.
    pub(crate) recent_stalls: &'a VecDeque<v1::Stall>,
    pub(crate) drops: v1::Drops,
}
