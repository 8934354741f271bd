//! Prometheus metrics: stalls, leaks and the probe's own health as `GET /metrics`
//! (`TASKSCOPE_METRICS_BIND`, off by default), so that a fleet can alert on them.
//!
//! The aggregator feeds a [`Tally`] with what it takes in anyway and refreshes it at its
//! publish cadence (`tally.rs`); the endpoint (`serve/metrics.rs`) serves the latest
//! refresh as text (`exposition.rs`); series are per spawn site, with their number bounded
//! (`sites.rs`). Nothing here runs on an app thread. `docs/monitoring.md` says what every
//! metric means.

mod exposition;
mod sites;
mod tally;

pub(crate) use exposition::{Board, Format};
pub(crate) use tally::Tally;

/// A task's spawn site as the metrics label it: `file:line:column`.
pub(crate) fn site_label(identity: &crate::tasks::cell::Identity) -> String {
    sites::label(sites::of(identity))
}

/// The aggregator feeds the tally everything it counts.
impl crate::aggregate::exporter::Exporter for Tally {
    fn on_spawn(&mut self, cell: &crate::tasks::cell::TaskCell, now_ns: u64) {
        self.spawned(cell, now_ns);
        // A task over before the aggregator took it in is counted as ended at once.
        self.ended(cell);
    }

    fn on_end(&mut self, cell: &crate::tasks::cell::TaskCell) {
        self.ended(cell);
    }

    fn on_stall_start(&mut self, task: u64) {
        self.stall_started(task);
    }

    fn on_stall_end(
        &mut self,
        stall: &taskscope_api::v1::Stall,
        _task: Option<&crate::tasks::cell::TaskCell>,
        _now_ns: u64,
    ) {
        self.stall_ended(stall.task_id, stall.duration_ns);
    }

    fn on_publish(&mut self, now: &crate::aggregate::exporter::Published<'_>) {
        let stalled = now.stalled_tasks.iter().copied();
        self.tick(now.now_ns, now.live.values(), stalled, now.drops);
    }
}
