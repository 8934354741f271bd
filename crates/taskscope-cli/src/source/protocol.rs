//! Which protocol a live target speaks: taskscope's own (`taskscope.v1.Probe`) or
//! tokio-console's (`rs.tokio.console.instrument.Instrument`, served by
//! console-subscriber). Either way the caller gets taskscope updates.
//!
//! `auto` asks for taskscope's `Watch` first and falls back to console's `WatchUpdates`
//! when the target answers `UNIMPLEMENTED` (a gRPC server without that service), on the
//! same connection.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail};
use taskscope_api::v1::Update;
use tonic::Code;

use super::grpc::{self, connect_raw, error_chain, io_kind};
use super::{Address, console};

/// The `--protocol` choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Protocol {
    /// taskscope's, else tokio-console's.
    #[default]
    Auto,
    /// A taskscope probe (`#[taskscope::main]` or `taskscope::init()`).
    Taskscope,
    /// A console-subscriber target (`console_subscriber::init()`), as tokio-console reads.
    Console,
}

/// What a live watch needs besides the address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    pub(crate) protocol: Protocol,
    /// console-subscriber reports no stalls: polls running longer than this are reported as
    /// stalls by the translation.
    pub(crate) stall_threshold: Duration,
    /// How long connecting and the first update may take (`--connect-timeout`).
    pub(crate) connect_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            protocol: Protocol::Auto,
            stall_threshold: Duration::from_millis(100),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// How long a client command waits for a target to connect and send its first update,
/// unless `--connect-timeout` says otherwise. A probe sends its state at once; a peer
/// that accepts the connection and then says nothing is not one (or is stopped).
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A live update stream, whichever protocol the target speaks.
pub(crate) struct LiveWatch {
    stream: Stream,
    /// The first answer, read while connecting (`None` inside: the stream closed at once).
    first: Option<Option<Update>>,
}

enum Stream {
    // Boxed: a stream is a few hundred bytes, and the link holds one for a long time.
    Taskscope(Box<grpc::Watch>),
    Console(Box<console::Watch>),
}

/// How far a connection got, for the message when it goes no further. Shared with the
/// connecting future as an atomic, so that the future stays `Send`.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Phase {
    Connecting,
    Starting,
    FirstUpdate,
}

struct Progress(AtomicU8);

impl Progress {
    fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Relaxed);
    }

    fn get(&self) -> Phase {
        match self.0.load(Ordering::Relaxed) {
            0 => Phase::Connecting,
            1 => Phase::Starting,
            _ => Phase::FirstUpdate,
        }
    }
}

impl LiveWatch {
    /// Connects, starts watching with the protocol asked for (or detected) and reads the
    /// first update, all within `options.connect_timeout`: a peer that accepts and never
    /// answers is an error naming the address, not a hang.
    pub(crate) async fn start(address: &Address, options: Options) -> anyhow::Result<Self> {
        let phase = Progress(AtomicU8::new(Phase::Connecting as u8));
        let answered = async {
            let mut stream = Stream::start(address, options, &phase).await?;
            phase.set(Phase::FirstUpdate);
            let first = stream.next().await?;
            anyhow::Ok(Self {
                stream,
                first: Some(first),
            })
        };
        match tokio::time::timeout(options.connect_timeout, answered).await {
            Ok(watch) => watch,
            Err(_) => Err(no_answer(address, options.connect_timeout, phase.get())),
        }
    }

    /// The next update; `None` when the target closed the stream.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Update>> {
        match self.first.take() {
            Some(first) => Ok(first),
            None => self.stream.next().await,
        }
    }
}

impl Stream {
    async fn start(address: &Address, options: Options, phase: &Progress) -> anyhow::Result<Self> {
        if options.protocol == Protocol::Taskscope {
            return grpc::Watch::start(address)
                .await
                .map(|watch| Self::Taskscope(Box::new(watch)));
        }
        let channel = connect_raw(address)
            .await?
            .map_err(|error| explain_connect_error(address, options.protocol, &error))?;
        phase.set(Phase::Starting);
        let threshold_ns = u64::try_from(options.stall_threshold.as_nanos()).unwrap_or(u64::MAX);
        if options.protocol == Protocol::Auto {
            match grpc::Watch::on_channel(channel.clone(), address).await {
                Ok(watch) => return Ok(Self::Taskscope(Box::new(watch))),
                Err(status) if status.code() == Code::Unimplemented => {}
                // A taskscope probe, then: the message says what token to give.
                Err(status) if status.code() == Code::Unauthenticated => {
                    bail!("{address} refused to stream: {}", status.message())
                }
                Err(status) => bail!(
                    "{address} refused to stream: {}{}; is it a taskscope probe or a \
                     console-subscriber target?",
                    status.message(),
                    super::tls::plain_text_hint(address, &status)
                ),
            }
        }
        match console::Watch::on_channel(channel, address, threshold_ns).await {
            Ok(watch) => Ok(Self::Console(Box::new(watch))),
            Err(status) if status.code() == Code::Unimplemented => match options.protocol {
                Protocol::Auto => bail!(
                    "{address} speaks neither taskscope's protocol (taskscope.v1.Probe) nor \
                     tokio-console's (rs.tokio.console.instrument.Instrument); is it the \
                     right address?"
                ),
                _ => bail!(
                    "{address} does not serve tokio-console's protocol \
                     (rs.tokio.console.instrument.Instrument); if it is a taskscope probe, \
                     use --protocol taskscope or auto"
                ),
            },
            Err(status) => bail!(
                "{address} refused to stream: {}; is it a console-subscriber target \
                 (console_subscriber::init())?",
                status.message()
            ),
        }
    }

    async fn next(&mut self) -> anyhow::Result<Option<Update>> {
        match self {
            Self::Taskscope(watch) => watch.next().await,
            Self::Console(watch) => watch.next().await,
        }
    }
}

/// What to check when a target let the connect timeout pass.
fn no_answer(address: &Address, timeout: Duration, phase: Phase) -> anyhow::Error {
    let what = match phase {
        Phase::Connecting => "did not complete the connection and the watch request",
        Phase::Starting => "accepted the connection but did not answer the watch request",
        Phase::FirstUpdate => "started a stream but sent no update",
    };
    anyhow!(
        "no answer from {address} within {timeout:?}: it {what}. Check that the address is a \
         taskscope probe (TASKSCOPE_BIND) or a console-subscriber target (TOKIO_CONSOLE_BIND) \
         and not another server, and that the app is not stopped (a debugger, SIGSTOP); on a \
         loaded machine raise --connect-timeout (TASKSCOPE_CONNECT_TIMEOUT)"
    )
}

/// Turns a transport error into what to do about it, for either kind of target.
fn explain_connect_error(
    address: &Address,
    protocol: Protocol,
    error: &tonic::transport::Error,
) -> anyhow::Error {
    let bind = match address {
        Address::Tcp(uri) => uri
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_owned(),
        Address::Unix(path) => format!("unix:{}", path.display()),
    };
    let expected = match protocol {
        Protocol::Console => format!(
            "is the app running with console-subscriber and TOKIO_CONSOLE_BIND={bind} (its \
             default port is {})?",
            console::DEFAULT_PORT
        ),
        _ => format!(
            "is the app running with the probe (#[taskscope::main] or taskscope::init()) and \
             TASKSCOPE_BIND={bind}, or with console-subscriber and TOKIO_CONSOLE_BIND={bind}?"
        ),
    };
    match io_kind(error) {
        Some(std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound) => {
            anyhow!("nothing is listening on {address}: {expected}")
        }
        _ => {
            let chain = error_chain(error);
            let advice = super::tls::certificate_advice(&chain, &bind).unwrap_or(expected);
            anyhow!("cannot connect to {address}: {chain}; {advice}")
        }
    }
}

#[cfg(test)]
mod tests {
    use taskscope_api::v1::probe_server::{Probe, ProbeServer};
    use taskscope_api::v1::{SnapshotPage, SnapshotRequest, WatchRequest};

    use super::*;

    /// A gRPC server without a single service: every call is `UNIMPLEMENTED`.
    async fn empty_grpc_server() -> Address {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(tonic::service::Routes::default())
                .serve_with_incoming(incoming),
        );
        Address::Tcp(format!("http://{address}"))
    }

    async fn error(address: &Address, protocol: Protocol) -> String {
        let options = Options {
            protocol,
            ..Options::default()
        };
        match LiveWatch::start(address, options).await {
            Ok(_) => panic!("{address} was watched with {protocol:?}"),
            Err(error) => format!("{error:#}"),
        }
    }

    #[tokio::test]
    async fn a_target_speaking_neither_protocol_is_named_as_such() {
        let address = empty_grpc_server().await;
        let auto = error(&address, Protocol::Auto).await;
        assert!(auto.contains("speaks neither"), "{auto}");
        let console = error(&address, Protocol::Console).await;
        assert!(
            console.contains("does not serve tokio-console's protocol"),
            "{console}"
        );
        let taskscope = error(&address, Protocol::Taskscope).await;
        assert!(taskscope.contains("taskscope probe"), "{taskscope}");
    }

    /// A probe that starts every stream and then never sends a thing.
    struct Mute;

    #[tonic::async_trait]
    impl Probe for Mute {
        type WatchStream = tokio_stream::Pending<Result<Update, tonic::Status>>;

        async fn watch(
            &self,
            _: tonic::Request<WatchRequest>,
        ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
            Ok(tonic::Response::new(tokio_stream::pending()))
        }

        async fn snapshot(
            &self,
            _: tonic::Request<SnapshotRequest>,
        ) -> Result<tonic::Response<SnapshotPage>, tonic::Status> {
            Err(tonic::Status::unimplemented("mute"))
        }

        async fn dump(
            &self,
            _: tonic::Request<taskscope_api::v1::DumpRequest>,
        ) -> Result<tonic::Response<taskscope_api::v1::Dump>, tonic::Status> {
            Err(tonic::Status::unimplemented("mute"))
        }
    }

    async fn waited(address: &Address) -> String {
        let options = Options {
            connect_timeout: Duration::from_millis(500),
            ..Options::default()
        };
        match LiveWatch::start(address, options).await {
            Ok(_) => panic!("{address} was watched"),
            Err(error) => format!("{error:#}"),
        }
    }

    #[tokio::test]
    async fn silence_is_an_error_naming_how_far_the_connection_got() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = Address::Tcp(format!("http://{}", listener.local_addr().unwrap()));
        let message = waited(&silent).await;
        assert!(
            message.contains("no answer from") && message.contains("did not answer the watch"),
            "{message}"
        );

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mute = Address::Tcp(format!("http://{}", listener.local_addr().unwrap()));
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ProbeServer::new(Mute))
                .serve_with_incoming(incoming),
        );
        let message = waited(&mute).await;
        assert!(
            message.contains("started a stream but sent no update"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn nothing_listening_names_both_ways_to_serve() {
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let address = Address::Tcp(format!("http://{free}"));
        let auto = error(&address, Protocol::Auto).await;
        assert!(auto.contains("nothing is listening"), "{auto}");
        assert!(
            auto.contains("TASKSCOPE_BIND") && auto.contains("TOKIO_CONSOLE_BIND"),
            "{auto}"
        );
        let console = error(&address, Protocol::Console).await;
        assert!(
            console.contains("TOKIO_CONSOLE_BIND") && !console.contains("TASKSCOPE_BIND"),
            "{console}"
        );
    }
}
