//! Which protocol a live target speaks: taskscope's own (`taskscope.v1.Probe`) or
//! tokio-console's (`rs.tokio.console.instrument.Instrument`, served by
//! console-subscriber). Either way the caller gets taskscope updates.
//!
//! `auto` asks for taskscope's `Watch` first and falls back to console's `WatchUpdates`
//! when the target answers `UNIMPLEMENTED` (a gRPC server without that service), on the
//! same connection.

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
    /// A taskscope probe (`taskscope::init()`).
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
}

impl Default for Options {
    fn default() -> Self {
        Self {
            protocol: Protocol::Auto,
            stall_threshold: Duration::from_millis(100),
        }
    }
}

/// A live update stream, whichever protocol the target speaks.
pub(crate) enum LiveWatch {
    // Boxed: a stream is a few hundred bytes, and the link holds one for a long time.
    Taskscope(Box<grpc::Watch>),
    Console(Box<console::Watch>),
}

impl LiveWatch {
    /// Connects and starts watching with the protocol asked for (or detected).
    pub(crate) async fn start(address: &Address, options: Options) -> anyhow::Result<Self> {
        if options.protocol == Protocol::Taskscope {
            return grpc::Watch::start(address)
                .await
                .map(|watch| Self::Taskscope(Box::new(watch)));
        }
        let channel = connect_raw(address)
            .await?
            .map_err(|error| explain_connect_error(address, options.protocol, &error))?;
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
                    "{address} refused to stream: {}; is it a taskscope probe or a \
                     console-subscriber target?",
                    status.message()
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

    /// The next update; `None` when the target closed the stream.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Update>> {
        match self {
            Self::Taskscope(watch) => watch.next().await,
            Self::Console(watch) => watch.next().await,
        }
    }
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
            "is the app running with taskscope::init() and TASKSCOPE_BIND={bind}, or with \
             console-subscriber and TOKIO_CONSOLE_BIND={bind}?"
        ),
    };
    match io_kind(error) {
        Some(std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound) => {
            anyhow!("nothing is listening on {address}: {expected}")
        }
        _ => anyhow!(
            "cannot connect to {address}: {}; {expected}",
            error_chain(error)
        ),
    }
}

#[cfg(test)]
mod tests {
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
