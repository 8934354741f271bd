//! Stalls as OTLP log records, sent from the probe's own runtime.
//!
//! The records are opentelemetry-proto's messages, sent with its generated tonic client,
//! rather than going through the OpenTelemetry SDK, whose batch processor runs threads of
//! its own: what they log would reach the app's subscriber (`quiet.rs` covers the probe's
//! threads only), and their queues would be the SDK's, not bounded by the probe. Here a
//! stall waits [`STACK_WAIT_NS`] after its end for its stacks (symbolized on another
//! thread), then its record waits in a queue of [`QUEUE`] for a batch; what does not fit,
//! or cannot be sent within [`EXPORT_TIMEOUT`], is dropped, and the first drop is reported
//! on stderr. The collector can slow only the probe's thread, never the app.

use std::collections::VecDeque;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use taskscope_api::v1;
use tokio::sync::mpsc;

/// How long after its end a stall waits for its stacks before it is sent.
const STACK_WAIT_NS: u64 = 1_500_000_000;
/// Ended stalls waiting for their stacks, at most.
const MAX_WAITING: usize = 1_024;
/// Records waiting to be sent, at most.
const QUEUE: usize = 1_024;
/// Records per export call, at most.
const BATCH: usize = 256;
/// The longest an export call (connection included) may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames of a stack sent, innermost first.
const MAX_FRAMES: usize = 64;

/// A stall that has ended, waiting for its stacks.
struct Ended {
    stall_id: u64,
    ended_ns: u64,
    site: String,
}

/// The aggregator's side of the export.
pub(crate) struct Otlp {
    waiting: VecDeque<Ended>,
    records: mpsc::Sender<LogRecord>,
    warned: bool,
}

impl Otlp {
    /// Starts sending to `endpoint` (`http://host:port`) on the current runtime (the
    /// probe's); `None`, after saying why, when the endpoint is unusable.
    pub(crate) fn start(endpoint: &str, program: &str) -> Option<Self> {
        let channel = match tonic::transport::Endpoint::from_shared(endpoint.to_owned()) {
            Ok(endpoint) => endpoint
                .connect_timeout(EXPORT_TIMEOUT)
                .timeout(EXPORT_TIMEOUT)
                .connect_lazy(),
            Err(e) => {
                crate::base::diag::warn(&format!(
                    "TASKSCOPE_OTLP_ENDPOINT={endpoint} is unusable ({e}); stalls are not \
                     exported (expected e.g. http://127.0.0.1:4317)"
                ));
                return None;
            }
        };
        let (records, queued) = mpsc::channel(QUEUE);
        let resource = resource(program);
        let client = LogsServiceClient::new(channel);
        tokio::spawn(send(client, queued, resource, endpoint.to_owned()));
        Some(Self {
            waiting: VecDeque::new(),
            records,
            warned: false,
        })
    }

    /// A stall ended at `now_ns`; it is sent once its stacks had time to arrive.
    pub(crate) fn stall_ended(&mut self, stall_id: u64, now_ns: u64, site: String) {
        if self.waiting.len() >= MAX_WAITING {
            self.dropped("more stalls than the export can hold");
            return;
        }
        self.waiting.push_back(Ended {
            stall_id,
            ended_ns: now_ns,
            site,
        });
    }

    /// Queues the records of the stalls whose stacks had time to arrive; `recent` are the
    /// aggregator's ended stalls, newest last.
    pub(crate) fn tick(&mut self, now_ns: u64, recent: &VecDeque<v1::Stall>) {
        while let Some(ended) = self.waiting.front() {
            if now_ns.saturating_sub(ended.ended_ns) < STACK_WAIT_NS {
                break;
            }
            let ended = self.waiting.pop_front().expect("a front element");
            let Some(stall) = recent.iter().rev().find(|s| s.stall_id == ended.stall_id) else {
                continue;
            };
            if self.records.try_send(record(stall, &ended.site)).is_err() {
                self.dropped("the collector takes them more slowly than the app stalls");
            }
        }
    }

    fn dropped(&mut self, why: &str) {
        if !std::mem::replace(&mut self.warned, true) {
            crate::base::diag::warn(&format!("dropping stall records for OTLP: {why}"));
        }
    }
}

/// Sends queued records in batches until the probe stops.
async fn send(
    mut client: LogsServiceClient<tonic::transport::Channel>,
    mut queued: mpsc::Receiver<LogRecord>,
    resource: Resource,
    endpoint: String,
) {
    let mut warned = false;
    while let Some(first) = queued.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            let Ok(record) = queued.try_recv() else { break };
            batch.push(record);
        }
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "taskscope".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    log_records: batch,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        if let Err(status) = client.export(request).await
            && !std::mem::replace(&mut warned, true)
        {
            crate::base::diag::warn(&format!(
                "cannot export stalls to the OTLP endpoint {endpoint}: {}; their records \
                 are dropped until it answers",
                status.message()
            ));
        }
    }
}

/// Who sends: the program, as OpenTelemetry's resource conventions name it.
fn resource(program: &str) -> Resource {
    Resource {
        attributes: vec![
            text("service.name", program.to_owned()),
            int("process.pid", i64::from(std::process::id())),
        ],
        ..Default::default()
    }
}

/// One stall as a log record.
fn record(stall: &v1::Stall, site: &str) -> LogRecord {
    let start_unix_ns = crate::base::clock::start_unix_ns().max(0) as u64;
    let duration_ms = stall.duration_ns as f64 / 1e6;
    let mut attributes = vec![
        text("taskscope.site", site.to_owned()),
        int("taskscope.task.id", stall.task_id as i64),
        int("taskscope.thread", i64::from(stall.thread)),
        KeyValue {
            key: "taskscope.stall.duration_ms".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::DoubleValue(duration_ms)),
            }),
            ..Default::default()
        },
    ];
    if let Some(stack) = stack_text(stall) {
        attributes.push(text("code.stacktrace", stack));
    }
    LogRecord {
        time_unix_nano: start_unix_ns + stall.poll_started_ns,
        observed_time_unix_nano: start_unix_ns + crate::base::clock::now_ns(),
        severity_number: SeverityNumber::Warn as i32,
        severity_text: "WARN".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(format!(
                "a poll of task {} (spawned at {site}) blocked its thread for {duration_ms:.0} ms",
                stall.task_id
            ))),
        }),
        attributes,
        ..Default::default()
    }
}

/// The stack of the sample that stands for the stall
/// ([`taskscope_api::stall::telling_sample`]), a frame a line.
fn stack_text(stall: &v1::Stall) -> Option<String> {
    let sample = taskscope_api::stall::telling_sample(stall)?;
    let lines: Vec<String> = sample
        .frames
        .iter()
        .take(MAX_FRAMES)
        .map(|frame| match frame.location.as_str() {
            "" => frame.function.clone(),
            location => format!("{} at {location}", frame.function),
        })
        .collect();
    Some(lines.join("\n"))
}

fn text(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}
