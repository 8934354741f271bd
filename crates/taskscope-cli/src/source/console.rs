//! A live console-subscriber target: tokio-console's `WatchUpdates` stream, translated
//! update by update into taskscope's (see [`convert`]).

pub(crate) mod convert;

use anyhow::anyhow;
use console_api::instrument::InstrumentRequest;
use console_api::instrument::instrument_client::InstrumentClient;
use taskscope_api::v1::Update;
use tonic::transport::Channel;

use self::convert::{Converter, Settings};
use super::Address;
use super::grpc::{MAX_MESSAGE, is_disconnect};

/// The port console-subscriber serves on by default (`TOKIO_CONSOLE_BIND`).
pub(crate) const DEFAULT_PORT: u16 = 6669;

/// The translated update stream of a console-subscriber target.
pub(crate) struct Watch {
    stream: tonic::Streaming<console_api::instrument::Update>,
    converter: Converter,
    address: Address,
}

impl Watch {
    /// Starts watching on a connected channel. The status is returned as is, so that
    /// protocol detection can tell "not a console-subscriber" (`UNIMPLEMENTED`) apart.
    pub(crate) async fn on_channel(
        channel: Channel,
        address: &Address,
        stall_threshold_ns: u64,
    ) -> Result<Self, tonic::Status> {
        let mut client = InstrumentClient::new(channel).max_decoding_message_size(MAX_MESSAGE);
        let stream = client
            .watch_updates(InstrumentRequest {})
            .await?
            .into_inner();
        let label = match address {
            Address::Tcp(uri) => uri
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .to_owned(),
            Address::Unix(path) => format!("unix:{}", path.display()),
        };
        Ok(Self {
            stream,
            converter: Converter::new(Settings {
                label,
                stall_threshold_ns,
            }),
            address: address.clone(),
        })
    }

    /// The next update, translated; `None` when the target closed the stream.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Update>> {
        match self.stream.message().await {
            Ok(Some(update)) => Ok(Some(self.converter.convert(&update))),
            Ok(None) => Ok(None),
            Err(status) if is_disconnect(&status) => Ok(None),
            Err(status) => Err(anyhow!(
                "the console-subscriber stream from {} broke: {}",
                self.address,
                status.message()
            )),
        }
    }
}
