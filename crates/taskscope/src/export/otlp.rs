//! OTLP export (cargo feature `otlp`, `TASKSCOPE_OTLP_ENDPOINT`): every stall as an
//! OpenTelemetry log record, with the stalled thread's stack, sent over OTLP/gRPC to a
//! collector.
//!
//! Without the feature, [`Otlp`] is a stand-in that says once why the endpoint is ignored,
//! so that the aggregator's hooks need no `cfg` of their own.

#[cfg(feature = "otlp")]
mod export;

#[cfg(feature = "otlp")]
pub(crate) use export::Otlp;

/// Stand-in for a build without the `otlp` feature.
#[cfg(not(feature = "otlp"))]
pub(crate) struct Otlp;

#[cfg(not(feature = "otlp"))]
impl Otlp {
    pub(crate) fn start(endpoint: &str, _program: &str) -> Option<Self> {
        crate::base::diag::warn(&format!(
            "TASKSCOPE_OTLP_ENDPOINT={endpoint} is ignored: this build of taskscope has no \
             OTLP export; enable the probe's cargo feature `otlp`"
        ));
        None
    }

    pub(crate) fn stall_ended(&mut self, _stall_id: u64, _now_ns: u64, _site: String) {}

    pub(crate) fn tick(
        &mut self,
        _now_ns: u64,
        _recent: &std::collections::VecDeque<taskscope_api::v1::Stall>,
    ) {
    }
}

/// The aggregator hands every ended stall over, with its task's spawn site.
impl crate::aggregate::exporter::Exporter for Otlp {
    fn on_stall_end(
        &mut self,
        stall: &taskscope_api::v1::Stall,
        task: Option<&crate::tasks::cell::TaskCell>,
        now_ns: u64,
    ) {
        let site = task.map_or_else(
            || "unknown".to_owned(),
            |cell| crate::export::metrics::site_label(&cell.identity),
        );
        self.stall_ended(stall.stall_id, now_ns, site);
    }

    fn on_publish(&mut self, now: &crate::aggregate::exporter::Published<'_>) {
        self.tick(now.now_ns, now.recent_stalls);
    }
}
