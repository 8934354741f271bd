//! Stalls exported over OTLP/gRPC (`TASKSCOPE_OTLP_ENDPOINT`, feature `otlp`) reach a real
//! OTLP receiver (opentelemetry-proto's tonic `LogsService`, served here on loopback) as
//! log records naming the stalled task's spawn site and carrying the stalled stack.

use std::process::Stdio;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use taskscope_e2e::{Location, Running, command, fault_location};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

/// Hands every export to the test.
struct Receiver {
    exports: mpsc::UnboundedSender<ExportLogsServiceRequest>,
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let _ = self.exports.send(request.into_inner());
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

/// The text value of attribute `key`.
fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    let value = attributes.iter().find(|a| a.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        any_value::Value::StringValue(text) => Some(text),
        _ => None,
    }
}

#[tokio::test]
async fn stalls_reach_an_otlp_receiver_with_their_site_and_stack() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (exports, mut received) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(LogsServiceServer::new(Receiver { exports }))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let app = Running::spawn(
        command("metrics_stall")
            .env("TASKSCOPE_OTLP_ENDPOINT", format!("http://{address}"))
            .env("METRICS_STALL_SECS", "120")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let Location { file, line, column } = fault_location("src/bin/metrics_stall.rs", "stall");
    let site = format!("{file}:{line}:{column}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut seen = Vec::new();
    let found = loop {
        let Ok(Some(export)) = tokio::time::timeout_at(deadline, received.recv()).await else {
            break None;
        };
        let program = export.resource_logs.iter().find_map(|r| {
            text(&r.resource.as_ref()?.attributes, "service.name").map(str::to_owned)
        });
        let records = export
            .resource_logs
            .into_iter()
            .flat_map(|r| r.scope_logs)
            .flat_map(|s| s.log_records);
        seen.extend(records.map(|record| (program.clone(), record)));
        // The stalled task's site, and the function its thread was blocked in.
        let wanted = seen.iter().find(|(_, r)| {
            text(&r.attributes, "taskscope.site") == Some(site.as_str())
                && text(&r.attributes, "code.stacktrace")
                    .is_some_and(|s| s.contains("flush_cache_synchronously"))
        });
        if let Some(found) = wanted {
            break Some(found.clone());
        }
    };
    drop(app);
    let Some((program, record)) = found else {
        panic!("no stall of {site} with its stack reached the receiver; received: {seen:#?}");
    };
    assert_eq!(program.as_deref(), Some("metrics_stall"));
    assert!(
        record.time_unix_nano > 0 && record.severity_text == "WARN",
        "{record:#?}"
    );
}
