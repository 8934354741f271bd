//! A live probe: the `Watch` stream over TCP or a Unix socket.

use std::time::Duration;

use anyhow::{Context, anyhow};
use hyper_util::rt::TokioIo;
use taskscope_api::v1::probe_client::ProbeClient;
use taskscope_api::v1::{self, DumpRequest, FlightRequest, SnapshotRequest, Update, WatchRequest};
use tokio::net::UnixStream;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};

use super::Address;

/// Long enough for a loaded machine, short enough that a wrong address fails fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Snapshots are split below tonic's default 4 MiB, but a newer probe may send larger
/// messages: accept them rather than drop the stream.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// The update stream of a live probe.
pub(crate) struct Watch {
    stream: tonic::Streaming<Update>,
    address: Address,
}

impl Watch {
    /// Starts watching on a connected channel; the status is returned as is, so that
    /// protocol detection can tell "not a taskscope probe" (`UNIMPLEMENTED`) apart.
    pub(crate) async fn on_channel(
        channel: Channel,
        address: &Address,
    ) -> Result<Self, tonic::Status> {
        let mut client = client(channel, address);
        let stream = client.watch(WatchRequest {}).await?.into_inner();
        Ok(Self {
            stream,
            address: address.clone(),
        })
    }

    /// The next update; `None` when the probe closed the stream (the process exited).
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Update>> {
        match self.stream.message().await {
            Ok(update) => Ok(update),
            // The app going away mid-stream is how most watches end, not a failure of ours.
            Err(status) if is_disconnect(&status) => Ok(None),
            Err(status) => Err(anyhow!(
                "the stream from {} broke: {}",
                self.address,
                status.message()
            )),
        }
    }
}

/// Adds the probe's bearer token, when one is set for the address, to every request.
#[derive(Clone)]
struct Bearer(Option<AsciiMetadataValue>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert(taskscope_api::token::HEADER, value.clone());
        }
        Ok(request)
    }
}

/// A client of the probe on `channel`, sending the address's token.
fn client(channel: Channel, address: &Address) -> ProbeClient<InterceptedService<Channel, Bearer>> {
    let token = super::token::for_address(address)
        .and_then(|token| taskscope_api::token::bearer(&token).parse().ok());
    ProbeClient::with_interceptor(channel, Bearer(token)).max_decoding_message_size(MAX_MESSAGE)
}

/// How long a dump may take to come back once asked for: it pauses the runtime while every
/// task is re-polled, which takes a while with many tasks on a loaded machine.
pub(crate) const DUMP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a dump could not be had, worded for the status line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DumpError {
    /// `FAILED_PRECONDITION`: the probe runs, but this platform or build has no task dumps.
    #[error("await chains are not available in this process: {0}")]
    Unavailable(String),
    /// `UNIMPLEMENTED`: the target serves no `Dump` (an older taskscope, or tokio-console's
    /// console-subscriber).
    #[error(
        "this target cannot take dumps: it runs an older taskscope probe or console-subscriber"
    )]
    Unsupported,
    #[error("no dump came back from {address} within {}s", DUMP_TIMEOUT.as_secs())]
    TimedOut { address: String },
    #[error("cannot take a dump: {0}")]
    Failed(String),
}

/// Asks the probe at `address` for a dump of where its tasks are waiting (the `Dump` RPC),
/// connecting within `connect_timeout` and waiting at most [`DUMP_TIMEOUT`] for the answer.
pub(crate) async fn dump(
    address: &Address,
    connect_timeout: Duration,
) -> Result<v1::Dump, DumpError> {
    let channel = tokio::time::timeout(connect_timeout, connect(address))
        .await
        .map_err(|_| {
            DumpError::Failed(format!(
                "{address} did not accept a connection within {}s",
                connect_timeout.as_secs_f64()
            ))
        })?
        .map_err(|error| DumpError::Failed(format!("{error:#}")))?;
    let answer = tokio::time::timeout(DUMP_TIMEOUT, client(channel, address).dump(DumpRequest {}))
        .await
        .map_err(|_| DumpError::TimedOut {
            address: address.to_string(),
        })?;
    match answer {
        Ok(dump) => Ok(dump.into_inner()),
        Err(status) => Err(match status.code() {
            tonic::Code::FailedPrecondition => DumpError::Unavailable(status.message().to_owned()),
            tonic::Code::Unimplemented => DumpError::Unsupported,
            _ => DumpError::Failed(format!("{address} answered: {}", status.message())),
        }),
    }
}

/// How long the probe may take to cut its flight window and page out its state.
const FLIGHT_TIMEOUT: Duration = Duration::from_secs(20);

/// What a live probe's flight recorder held when asked, and the state that names it.
pub(crate) struct LiveFlight {
    pub(crate) window: v1::FlightWindow,
    /// The probe's current state, every page of its snapshot (the tasks' names, the
    /// process), taken right after the window so that it knows every task the window does.
    pub(crate) state: Vec<Update>,
}

/// Asks the probe at `address` for its flight recorder's last `span_ns` (0: the app's
/// configured span; the `Flight` RPC), then for its state, connecting within
/// `connect_timeout`.
pub(crate) async fn flight(
    address: &Address,
    connect_timeout: Duration,
    span_ns: u64,
) -> anyhow::Result<LiveFlight> {
    let channel = tokio::time::timeout(connect_timeout, connect(address))
        .await
        .map_err(|_| {
            anyhow!(
                "{address} did not accept a connection within {}s",
                connect_timeout.as_secs_f64()
            )
        })??;
    let mut client = client(channel, address);
    let ask = async {
        let window = client
            .flight(FlightRequest { span_ns })
            .await
            .map_err(|status| match status.code() {
                tonic::Code::Unimplemented => anyhow!(
                    "{address} has no flight recorder to read: it runs an older taskscope \
                     probe or console-subscriber"
                ),
                _ => anyhow!("{address} answered: {}", status.message()),
            })?
            .into_inner();
        let mut state = Vec::new();
        let mut page_token = 0;
        loop {
            let page = client
                .snapshot(SnapshotRequest { page_token })
                .await
                .map_err(|status| anyhow!("{address} answered: {}", status.message()))?
                .into_inner();
            state.extend(page.update);
            if page.next_page_token == 0 {
                break;
            }
            page_token = page.next_page_token;
        }
        anyhow::Ok(LiveFlight { window, state })
    };
    tokio::time::timeout(FLIGHT_TIMEOUT, ask)
        .await
        .map_err(|_| {
            anyhow!(
                "{address} did not answer within {}s",
                FLIGHT_TIMEOUT.as_secs()
            )
        })?
}

pub(crate) fn is_disconnect(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Unknown
    )
}

async fn connect(address: &Address) -> anyhow::Result<Channel> {
    connect_raw(address)
        .await?
        .map_err(|error| explain_connect_error(address, &error))
}

/// Connects, leaving a transport error (the inner one) for the caller to explain.
pub(crate) async fn connect_raw(
    address: &Address,
) -> anyhow::Result<Result<Channel, tonic::transport::Error>> {
    Ok(match address {
        Address::Tcp(uri) => {
            let mut endpoint = Endpoint::from_shared(uri.clone()).with_context(|| {
                format!("`{uri}` is not a valid address; write e.g. 127.0.0.1:6670")
            })?;
            if super::tls::is_https(uri) {
                endpoint = endpoint
                    .tls_config(super::tls::client_config(uri)?)
                    .with_context(|| format!("cannot set TLS up for {uri}"))?;
            }
            endpoint.connect_timeout(CONNECT_TIMEOUT).connect().await
        }
        Address::Unix(path) => {
            let path = path.clone();
            // The URI is required by the API but unused: the connector ignores it.
            Endpoint::from_static("http://unix.socket")
                .connect_timeout(CONNECT_TIMEOUT)
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }))
                .await
        }
    })
}

/// Turns a transport error into what to do about it.
pub(crate) fn explain_connect_error(
    address: &Address,
    error: &tonic::transport::Error,
) -> anyhow::Error {
    let bind = match address {
        Address::Tcp(uri) => uri
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_owned(),
        Address::Unix(path) => format!("unix:{}", path.display()),
    };
    match io_kind(error) {
        Some(std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound) => anyhow!(
            "nothing is listening on {address}: is the app running with the probe \
             (#[taskscope::main] or taskscope::init()) and TASKSCOPE_BIND={bind}?"
        ),
        _ => {
            let chain = error_chain(error);
            let advice = super::tls::certificate_advice(&chain, &bind).unwrap_or_else(|| {
                format!(
                    "check the address and that the app runs with the probe \
                     (#[taskscope::main] or taskscope::init()) and TASKSCOPE_BIND={bind}"
                )
            });
            anyhow!("cannot connect to {address}: {chain}; {advice}")
        }
    }
}

/// The kind of the I/O error under a transport error, if any.
pub(crate) fn io_kind(error: &tonic::transport::Error) -> Option<std::io::ErrorKind> {
    std::iter::successors(Some(error as &dyn std::error::Error), |e| e.source())
        .find_map(|e| e.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)
}

pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    std::iter::successors(Some(error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use taskscope_api::v1::probe_server::{Probe, ProbeServer};
    use taskscope_api::v1::{SnapshotPage, SnapshotRequest};

    use super::*;

    /// A probe that answers every `Dump` with `answer` and serves nothing else.
    struct Dumper {
        answer: fn() -> Result<v1::Dump, tonic::Status>,
    }

    #[tonic::async_trait]
    impl Probe for Dumper {
        type WatchStream = tokio_stream::Pending<Result<Update, tonic::Status>>;

        async fn watch(
            &self,
            _: tonic::Request<WatchRequest>,
        ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
            Err(tonic::Status::unimplemented("dumps only"))
        }

        async fn snapshot(
            &self,
            _: tonic::Request<SnapshotRequest>,
        ) -> Result<tonic::Response<SnapshotPage>, tonic::Status> {
            Err(tonic::Status::unimplemented("dumps only"))
        }

        async fn dump(
            &self,
            _: tonic::Request<DumpRequest>,
        ) -> Result<tonic::Response<v1::Dump>, tonic::Status> {
            (self.answer)().map(tonic::Response::new)
        }

        async fn flight(
            &self,
            _: tonic::Request<taskscope_api::v1::FlightRequest>,
        ) -> Result<tonic::Response<taskscope_api::v1::FlightWindow>, tonic::Status> {
            Err(tonic::Status::unimplemented("dumps only"))
        }
    }

    async fn serve(answer: fn() -> Result<v1::Dump, tonic::Status>) -> Address {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::Tcp(format!("http://{}", listener.local_addr().unwrap()));
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ProbeServer::new(Dumper { answer }))
                .serve_with_incoming(incoming),
        );
        address
    }

    async fn dumped(answer: fn() -> Result<v1::Dump, tonic::Status>) -> Result<v1::Dump, String> {
        let address = serve(answer).await;
        dump(&address, Duration::from_secs(5))
            .await
            .map_err(|error| error.to_string())
    }

    #[tokio::test]
    async fn a_dump_comes_back_over_grpc() {
        let dump = dumped(|| {
            Ok(v1::Dump {
                taken_ns: 42,
                chains: vec![v1::AwaitChain {
                    task_id: 7,
                    leaves: vec![0],
                }],
                ..Default::default()
            })
        })
        .await
        .expect("a dump");
        assert_eq!((dump.taken_ns, dump.chains[0].task_id), (42, 7));
    }

    #[tokio::test]
    async fn refusals_say_what_they_mean() {
        let unavailable = dumped(|| {
            Err(tonic::Status::failed_precondition(
                "tokio's task dumps need Linux on x86_64 or aarch64",
            ))
        })
        .await
        .unwrap_err();
        assert_eq!(
            unavailable,
            "await chains are not available in this process: tokio's task dumps need Linux \
             on x86_64 or aarch64"
        );
        let old = dumped(|| Err(tonic::Status::unimplemented("no Dump")))
            .await
            .unwrap_err();
        assert!(
            old.contains("an older taskscope probe or console-subscriber"),
            "{old}"
        );
        let broken = dumped(|| Err(tonic::Status::internal("boom")))
            .await
            .unwrap_err();
        assert!(broken.contains("answered: boom"), "{broken}");
    }

    #[tokio::test]
    async fn nothing_listening_is_an_error_not_a_hang() {
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let error = dump(
            &Address::Tcp(format!("http://{free}")),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(error.contains("nothing is listening"), "{error}");
    }
}
