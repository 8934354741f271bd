//! A live probe: the `Watch` stream over TCP or a Unix socket.

use std::time::Duration;

use anyhow::{Context, anyhow};
use hyper_util::rt::TokioIo;
use taskscope_api::v1::probe_client::ProbeClient;
use taskscope_api::v1::{Update, WatchRequest};
use tokio::net::UnixStream;
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
    /// Connects and starts watching.
    pub(crate) async fn start(address: &Address) -> anyhow::Result<Self> {
        let channel = connect(address).await?;
        Self::on_channel(channel, address)
            .await
            .map_err(|status| anyhow!("{address} refused to stream: {}", status.message()))
            .with_context(|| format!("is {address} a taskscope probe (taskscope::init())?"))
    }

    /// Starts watching on a connected channel; the status is returned as is, so that
    /// protocol detection can tell "not a taskscope probe" (`UNIMPLEMENTED`) apart.
    pub(crate) async fn on_channel(
        channel: Channel,
        address: &Address,
    ) -> Result<Self, tonic::Status> {
        let token = super::token::for_address(address)
            .and_then(|token| taskscope_api::token::bearer(&token).parse().ok());
        let with_token = move |mut request: tonic::Request<()>| {
            if let Some(value) = &token {
                let value: &tonic::metadata::AsciiMetadataValue = value;
                request
                    .metadata_mut()
                    .insert(taskscope_api::token::HEADER, value.clone());
            }
            Ok(request)
        };
        let mut client = ProbeClient::with_interceptor(channel, with_token)
            .max_decoding_message_size(MAX_MESSAGE);
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
            let endpoint = Endpoint::from_shared(uri.clone()).with_context(|| {
                format!("`{uri}` is not a valid address; write e.g. 127.0.0.1:6670")
            })?;
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
fn explain_connect_error(address: &Address, error: &tonic::transport::Error) -> anyhow::Error {
    let bind = match address {
        Address::Tcp(uri) => uri
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_owned(),
        Address::Unix(path) => format!("unix:{}", path.display()),
    };
    match io_kind(error) {
        Some(std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound) => anyhow!(
            "nothing is listening on {address}: is the app running with taskscope::init() and \
             TASKSCOPE_BIND={bind}?"
        ),
        _ => anyhow!(
            "cannot connect to {address}: {}; check the address and that the app runs with \
             taskscope::init() and TASKSCOPE_BIND={bind}",
            error_chain(error)
        ),
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
