//! The published numbers and their text: Prometheus's text format (0.0.4) or OpenMetrics,
//! as the scraper's `Accept` header asks, written by `prometheus-client`.
//!
//! The text is written at most once per refresh and format, and every scrape until the
//! next refresh gets the same bytes: a scraper in a loop costs the probe's thread a copy
//! of a reference count, not an encoding.

use std::fmt;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use prost::bytes::Bytes;
use taskscope_api::v1;

use super::tally::{Buckets, OUTCOMES, POLL_BOUNDS_NS, STALL_BOUNDS_S, Series};

/// Everything one refresh found.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    /// The sites with series of their own, and `other`.
    pub(crate) series: Vec<Series>,
    pub(crate) drops: v1::Drops,
    pub(crate) lag_s: f64,
    pub(crate) threshold_s: f64,
    /// Lost wakers are only exported where they can be seen.
    pub(crate) waker_tracking: bool,
}

/// The text formats a scraper can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `text/plain; version=0.0.4`, what every Prometheus reads.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it is named (Prometheus
    /// lists it first), Prometheus's text format otherwise.
    pub(crate) fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Prometheus,
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The latest exposition, shared by the aggregator (which publishes) and the endpoint.
#[derive(Default)]
pub(crate) struct Board {
    latest: Mutex<Latest>,
}

#[derive(Default)]
struct Latest {
    exposition: Arc<Exposition>,
    /// The text of `exposition`, by [`Format`], once written.
    prometheus: Option<Bytes>,
    openmetrics: Option<Bytes>,
}

impl Board {
    pub(crate) fn publish(&self, exposition: Exposition) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        *latest = Latest {
            exposition: Arc::new(exposition),
            ..Latest::default()
        };
    }

    /// The latest exposition's text in `format`.
    pub(crate) fn text(&self, format: Format) -> Bytes {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        let exposition = latest.exposition.clone();
        let cached = match format {
            Format::Prometheus => &mut latest.prometheus,
            Format::OpenMetrics => &mut latest.openmetrics,
        };
        cached
            .get_or_insert_with(|| Bytes::from(encode(exposition, format)))
            .clone()
    }
}

/// Writes `exposition` in `format`.
pub(crate) fn encode(exposition: Arc<Exposition>, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(View(exposition)));
    let mut text = String::new();
    let written = match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, &registry),
    };
    // Only the writer can fail, and a String never does.
    written.expect("writing to a String");
    text
}

/// An exposition as `prometheus-client` collects it.
#[derive(Debug)]
struct View(Arc<Exposition>);

impl Collector for View {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        self.encode_tasks(&mut encoder)?;
        self.encode_stalls(&mut encoder)?;
        self.encode_probe(&mut encoder)
    }
}

impl View {
    fn encode_tasks(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let series = &self.0.series;
        per_site(
            encoder,
            ("taskscope_tasks_live", MetricType::Gauge),
            "Tasks alive now, by spawn site (sites beyond TASKSCOPE_METRICS_MAX_SITES are summed as site=\"other\").",
            series,
            |s| s.live,
        )?;
        per_site(
            encoder,
            ("taskscope_tasks_spawned", MetricType::Counter),
            "Tasks the probe has taken in, by spawn site.",
            series,
            |s| s.spawned,
        )?;
        let mut metric = encoder.encode_descriptor(
            "taskscope_tasks_ended",
            "Tasks that have ended, by spawn site and outcome (alive_at_shutdown: still pending when their runtime shut down).",
            None,
            MetricType::Counter,
        )?;
        for s in series {
            for (index, outcome) in OUTCOMES.iter().enumerate() {
                let labels = [("site", &*s.site), ("outcome", *outcome)];
                counter(&mut metric.encode_family(&labels)?, s.ended[index])?;
            }
        }
        if self.0.waker_tracking {
            per_site(
                encoder,
                ("taskscope_lost_wakers", MetricType::Gauge),
                "Live tasks idle for over a second with no waker left: nothing can ever wake them.",
                series,
                |s| s.lost_wakers,
            )?;
        }
        histogram_per_site(
            encoder,
            "taskscope_poll_duration",
            "How long polls took, by spawn site of the task.",
            series,
            |s| &s.polls,
            &POLL_BOUNDS_NS.map(|ns| ns as f64 / 1e9),
        )
    }

    fn encode_stalls(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let series = &self.0.series;
        per_site(
            encoder,
            ("taskscope_stalls", MetricType::Counter),
            "Polls that ran past the stall threshold, counted when first seen, by spawn site of the task.",
            series,
            |s| s.stalls,
        )?;
        per_site(
            encoder,
            ("taskscope_stalls_running", MetricType::Gauge),
            "Stalls still running: polls past the threshold that have not returned yet.",
            series,
            |s| s.stalls_running,
        )?;
        histogram_per_site(
            encoder,
            "taskscope_stall_duration",
            "How long stalls lasted (whole poll), counted when they end, by spawn site of the task.",
            series,
            |s| &s.stall_durations,
            &STALL_BOUNDS_S,
        )
    }

    fn encode_probe(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let drops = &self.0.drops;
        let mut metric = encoder.encode_descriptor(
            "taskscope_probe_dropped",
            "What the probe had to drop or delay to never block the app, by kind.",
            None,
            MetricType::Counter,
        )?;
        for (what, count) in [
            ("spawn_events_delayed", drops.spawn_events_delayed),
            ("tasks_lost", drops.tasks_lost),
            ("stall_events", drops.stall_events),
            ("recording_updates", drops.recording_updates),
            ("ended_tasks_evicted", drops.ended_tasks_evicted),
            ("wait_events", drops.wait_events),
        ] {
            counter(&mut metric.encode_family(&[("what", what)])?, count)?;
        }
        encoder
            .encode_descriptor(
                "taskscope_probe_lag",
                "The most the probe's publishing ran late in the last refresh (its thread was busy or starved).",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?
            .encode_gauge(&self.0.lag_s)?;
        encoder
            .encode_descriptor(
                "taskscope_stall_threshold",
                "A poll longer than this is a stall (TASKSCOPE_STALL_THRESHOLD).",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?
            .encode_gauge(&self.0.threshold_s)
    }
}

/// A counter or gauge with one value per site.
fn per_site(
    encoder: &mut DescriptorEncoder,
    (name, metric_type): (&str, MetricType),
    help: &str,
    series: &[Series],
    value: impl Fn(&Series) -> u64,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for s in series {
        let labels = [("site", &*s.site)];
        let mut family = metric.encode_family(&labels)?;
        if metric_type == MetricType::Counter {
            counter(&mut family, value(s))?;
        } else {
            family.encode_gauge(&value(s))?;
        }
    }
    Ok(())
}

fn counter(metric: &mut MetricEncoder, value: u64) -> fmt::Result {
    metric.encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// A histogram (in seconds) per site; `bounds` are the upper bounds of all buckets but
/// the last, unbounded one.
fn histogram_per_site(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[Series],
    buckets: impl Fn(&Series) -> &Buckets,
    bounds: &[f64],
) -> fmt::Result {
    let mut metric =
        encoder.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for s in series {
        let counts = buckets(s);
        let pairs: Vec<(f64, u64)> = bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(counts.counts.iter().copied())
            .collect();
        let labels = [("site", &*s.site)];
        metric
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(counts.sum, counts.count(), &pairs, None)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_header_chooses_the_format() {
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1")),
            Format::Prometheus
        );
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5"
            )),
            Format::OpenMetrics
        );
    }

    #[test]
    fn an_empty_exposition_still_names_every_metric_in_both_formats() {
        let exposition = Arc::new(Exposition::default());
        let text = encode(exposition.clone(), Format::Prometheus);
        assert!(
            text.contains("# TYPE taskscope_stalls_total counter"),
            "{text}"
        );
        assert!(
            text.contains("taskscope_probe_dropped_total{what=\"tasks_lost\"} 0"),
            "{text}"
        );
        let open = encode(exposition, Format::OpenMetrics);
        assert!(open.ends_with("# EOF\n"), "{open}");
    }
}
