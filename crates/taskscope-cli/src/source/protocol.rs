//! Which protocol a live target speaks: taskscope's own (`taskscope.v1.Probe`) or
//! tokio-console's (`rs.tokio.console.instrument.Instrument`, served by
//! console-subscriber). Either way the caller gets taskscope updates.
//!
//! `auto` asks for taskscope's `Watch` first and falls back to console's `WatchUpdates`
//! when the target answers `UNIMPLEMENTED` (a gRPC server without that service), on the
//! same connection.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use anyhow::anyhow;
use taskscope_api::v1::Update;
use tokio::time::Instant;
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

/// The first pause before another attempt after a refused or reset connection; it
/// doubles up to [`MAX_RETRY_PAUSE`]. Short: a probe that closed a connection to make room
/// for another, or that is just starting, usually takes the next one.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// How an attempt to start watching failed.
enum Failure {
    /// The connection was refused or closed before the target answered the watch request:
    /// nothing listens yet, or the target closed it (a probe at its connection limit
    /// closes connections that made no call yet to make room). Worth another attempt.
    Refused(anyhow::Error),
    /// Anything else: an answer, a refusal in words, silence until the deadline.
    Final(anyhow::Error),
}

impl Failure {
    fn into_error(self) -> anyhow::Error {
        match self {
            Self::Refused(error) | Self::Final(error) => error,
        }
    }
}

impl LiveWatch {
    /// Connects, starts watching with the protocol asked for (or detected) and reads the
    /// first update, all within `options.connect_timeout`: a peer that accepts and never
    /// answers is an error naming the address, not a hang. A connection refused or closed
    /// before the target answered is tried again within that time, so that `events` and
    /// `check --attach` get in beside a crowd of idle connections, or as the app starts.
    pub(crate) async fn start(address: &Address, options: Options) -> anyhow::Result<Self> {
        let deadline = Instant::now() + options.connect_timeout;
        let mut pause = FIRST_RETRY_PAUSE;
        loop {
            match Self::attempt_until(address, options, deadline).await {
                Err(Failure::Refused(_)) if Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
                result => return result.map_err(Failure::into_error),
            }
        }
    }

    /// One attempt of [`LiveWatch::start`], for the dashboard, which retries on its own and
    /// shows why in between.
    pub(crate) async fn attempt(address: &Address, options: Options) -> anyhow::Result<Self> {
        let deadline = Instant::now() + options.connect_timeout;
        Self::attempt_until(address, options, deadline)
            .await
            .map_err(Failure::into_error)
    }

    async fn attempt_until(
        address: &Address,
        options: Options,
        deadline: Instant,
    ) -> Result<Self, Failure> {
        let phase = Progress(AtomicU8::new(Phase::Connecting as u8));
        let answered = async {
            let mut stream = Stream::start(address, options, &phase).await?;
            phase.set(Phase::FirstUpdate);
            let first = stream.next().await.map_err(Failure::Final)?;
            Ok(Self {
                stream,
                first: Some(first),
            })
        };
        match tokio::time::timeout_at(deadline, answered).await {
            Ok(watch) => watch,
            Err(_) => Err(Failure::Final(no_answer(
                address,
                options.connect_timeout,
                phase.get(),
            ))),
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
    async fn start(address: &Address, options: Options, phase: &Progress) -> Result<Self, Failure> {
        let channel = match connect_raw(address).await.map_err(Failure::Final)? {
            Ok(channel) => channel,
            Err(error) => {
                let explained = match options.protocol {
                    Protocol::Taskscope => grpc::explain_connect_error(address, &error),
                    protocol => explain_connect_error(address, protocol, &error),
                };
                return Err(match io_kind(&error) {
                    Some(kind) if refused(kind) => Failure::Refused(explained),
                    _ => Failure::Final(explained),
                });
            }
        };
        phase.set(Phase::Starting);
        let threshold_ns = u64::try_from(options.stall_threshold.as_nanos()).unwrap_or(u64::MAX);
        if options.protocol != Protocol::Console {
            match grpc::Watch::on_channel(channel.clone(), address).await {
                Ok(watch) => return Ok(Self::Taskscope(Box::new(watch))),
                Err(status) if grpc::is_disconnect(&status) => {
                    return Err(closed_before_answer(address, &status));
                }
                Err(status) if options.protocol == Protocol::Taskscope => {
                    return Err(Failure::Final(
                        anyhow!(
                            "{address} refused to stream: {}{}",
                            status.message(),
                            super::tls::plain_text_hint(address, &status)
                        )
                        .context(format!(
                            "is {address} a taskscope probe (#[taskscope::main] or \
                             taskscope::init())?"
                        )),
                    ));
                }
                Err(status) if status.code() == Code::Unimplemented => {}
                // A taskscope probe, then: the message says what token to give.
                Err(status) if status.code() == Code::Unauthenticated => {
                    return Err(Failure::Final(anyhow!(
                        "{address} refused to stream: {}",
                        status.message()
                    )));
                }
                Err(status) => {
                    return Err(Failure::Final(anyhow!(
                        "{address} refused to stream: {}{}; is it a taskscope probe or a \
                         console-subscriber target?",
                        status.message(),
                        super::tls::plain_text_hint(address, &status)
                    )));
                }
            }
        }
        let failure = match console::Watch::on_channel(channel, address, threshold_ns).await {
            Ok(watch) => return Ok(Self::Console(Box::new(watch))),
            Err(status) if grpc::is_disconnect(&status) => {
                return Err(closed_before_answer(address, &status));
            }
            Err(status) if status.code() == Code::Unimplemented => match options.protocol {
                Protocol::Auto => anyhow!(
                    "{address} speaks neither taskscope's protocol (taskscope.v1.Probe) nor \
                     tokio-console's (rs.tokio.console.instrument.Instrument); is it the \
                     right address?"
                ),
                _ => anyhow!(
                    "{address} does not serve tokio-console's protocol \
                     (rs.tokio.console.instrument.Instrument); if it is a taskscope probe, \
                     use --protocol taskscope or auto"
                ),
            },
            Err(status) => anyhow!(
                "{address} refused to stream: {}; is it a console-subscriber target \
                 (console_subscriber::init())?",
                status.message()
            ),
        };
        Err(Failure::Final(failure))
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

/// Whether a failed connection attempt is worth another: nothing listens (yet), or the
/// peer closed the connection during the handshake.
fn refused(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | NotFound
            | ConnectionReset
            | ConnectionAborted
            | BrokenPipe
            | UnexpectedEof
    )
}

/// A call that failed because the connection closed under it (`grpc::is_disconnect`: the
/// codes tonic gives a transport failure), not with the target's answer. A probe shutting
/// down answers `UNAVAILABLE` too, and another attempt within the connect timeout costs
/// nothing. A TLS probe closes a plain-text client's connection the same way, hence the
/// hint.
fn closed_before_answer(address: &Address, status: &tonic::Status) -> Failure {
    let causes = std::iter::successors(std::error::Error::source(status), |e| e.source())
        .map(|e| format!(": {e}"))
        .collect::<String>();
    Failure::Refused(anyhow!(
        "{address} closed the connection before answering: {}{causes}{}",
        status.message(),
        super::tls::plain_text_hint(address, status)
    ))
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
        error_within(address, protocol, DEFAULT_CONNECT_TIMEOUT).await
    }

    async fn error_within(address: &Address, protocol: Protocol, timeout: Duration) -> String {
        let options = Options {
            protocol,
            connect_timeout: timeout,
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

        async fn flight(
            &self,
            _: tonic::Request<taskscope_api::v1::FlightRequest>,
        ) -> Result<tonic::Response<taskscope_api::v1::FlightWindow>, tonic::Status> {
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
        // Refused connections are tried again until the connect timeout.
        let timeout = Duration::from_secs(1);
        let auto = error_within(&address, Protocol::Auto, timeout).await;
        assert!(auto.contains("nothing is listening"), "{auto}");
        assert!(
            auto.contains("TASKSCOPE_BIND") && auto.contains("TOKIO_CONSOLE_BIND"),
            "{auto}"
        );
        let console = error_within(&address, Protocol::Console, timeout).await;
        assert!(
            console.contains("TOKIO_CONSOLE_BIND") && !console.contains("TASKSCOPE_BIND"),
            "{console}"
        );
    }

    /// A probe that answers every watch with one update and keeps the stream open.
    struct Speaker;

    #[tonic::async_trait]
    impl Probe for Speaker {
        type WatchStream = std::pin::Pin<
            Box<dyn tokio_stream::Stream<Item = Result<Update, tonic::Status>> + Send>,
        >;

        async fn watch(
            &self,
            _: tonic::Request<WatchRequest>,
        ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
            let first = tokio_stream::once(Ok(Update::default()));
            let stream = tokio_stream::StreamExt::chain(first, tokio_stream::pending());
            Ok(tonic::Response::new(Box::pin(stream)))
        }

        async fn snapshot(
            &self,
            _: tonic::Request<SnapshotRequest>,
        ) -> Result<tonic::Response<SnapshotPage>, tonic::Status> {
            Err(tonic::Status::unimplemented("speaker"))
        }

        async fn dump(
            &self,
            _: tonic::Request<taskscope_api::v1::DumpRequest>,
        ) -> Result<tonic::Response<taskscope_api::v1::Dump>, tonic::Status> {
            Err(tonic::Status::unimplemented("speaker"))
        }

        async fn flight(
            &self,
            _: tonic::Request<taskscope_api::v1::FlightRequest>,
        ) -> Result<tonic::Response<taskscope_api::v1::FlightWindow>, tonic::Status> {
            Err(tonic::Status::unimplemented("speaker"))
        }
    }

    /// A probe whose first `closed` connections are closed once their first call has
    /// arrived, unanswered, as a probe at its connection limit closes one that had not
    /// proved itself yet to make room for a newcomer.
    async fn closing_first(closed: usize) -> Address {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::Tcp(format!("http://{}", listener.local_addr().unwrap()));
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            for accepted in 0.. {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                if accepted < closed {
                    tokio::spawn(close_at_first_call(stream));
                } else if sender.send(Ok::<_, std::io::Error>(stream)).await.is_err() {
                    return;
                }
            }
        });
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ProbeServer::new(Speaker))
                .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(receiver)),
        );
        address
    }

    /// Reads HTTP/2 frames until the first HEADERS frame of a stream (a call), then
    /// closes the connection.
    async fn close_at_first_call(mut stream: tokio::net::TcpStream) {
        use tokio::io::AsyncReadExt;
        let mut preface = [0; 24];
        if stream.read_exact(&mut preface).await.is_err() {
            return;
        }
        loop {
            let mut header = [0; 9];
            if stream.read_exact(&mut header).await.is_err() {
                return;
            }
            let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let stream_id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
            if header[3] == 0x1 && stream_id != 0 {
                return;
            }
            let mut payload = vec![0; length];
            if stream.read_exact(&mut payload).await.is_err() {
                return;
            }
        }
    }

    #[tokio::test]
    async fn a_connection_closed_before_the_answer_is_tried_again() {
        let address = closing_first(1).await;
        let once = match LiveWatch::attempt(&address, Options::default()).await {
            Ok(_) => panic!("the first connection was watched"),
            Err(error) => format!("{error:#}"),
        };
        assert!(once.contains("closed the connection"), "{once}");
        let address = closing_first(5).await;
        let mut watch = LiveWatch::start(&address, Options::default())
            .await
            .expect("watched once the target kept a connection");
        assert!(watch.next().await.unwrap().is_some());
    }
}
