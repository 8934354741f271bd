//! A live console-subscriber target: tokio-console's `WatchUpdates` stream, translated
//! update by update into taskscope's (see [`convert`]), plus the `WatchTaskDetails`
//! streams of up to [`MAX_FOLLOWED`] live tasks for their poll histograms.

pub(crate) mod convert;
mod fields;
mod histogram;
mod polls;

use std::collections::HashMap;

use anyhow::anyhow;
use console_api::instrument::instrument_client::InstrumentClient;
use console_api::instrument::{InstrumentRequest, TaskDetailsRequest};
use console_api::tasks::TaskDetails;
use taskscope_api::v1::Update;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tonic::transport::Channel;

use self::convert::{Converter, Settings};
use super::Address;
use super::grpc::{MAX_MESSAGE, is_disconnect};

/// The port console-subscriber serves on by default (`TOKIO_CONSOLE_BIND`).
pub(crate) const DEFAULT_PORT: u16 = 6669;

/// Tasks whose details (poll histograms) are followed at once. Each is a stream the target
/// feeds every publish interval, so they are bounded; tasks beyond it have no histogram.
const MAX_FOLLOWED: usize = 64;

/// Task details waiting to be folded in; when full, newer ones are dropped (the next
/// second brings fresh ones).
const DETAILS_BUFFER: usize = 256;

/// The translated update stream of a console-subscriber target.
pub(crate) struct Watch {
    stream: tonic::Streaming<console_api::instrument::Update>,
    converter: Converter,
    address: Address,
    client: InstrumentClient<Channel>,
    details: mpsc::Receiver<TaskDetails>,
    details_sender: mpsc::Sender<TaskDetails>,
    /// Details streams open, by span id.
    followed: HashMap<u64, AbortHandle>,
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
        let (details_sender, details) = mpsc::channel(DETAILS_BUFFER);
        Ok(Self {
            stream,
            converter: Converter::new(Settings {
                label,
                stall_threshold_ns,
            }),
            address: address.clone(),
            client,
            details,
            details_sender,
            followed: HashMap::new(),
        })
    }

    /// The next update, translated; `None` when the target closed the stream.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Update>> {
        loop {
            tokio::select! {
                message = self.stream.message() => {
                    let update = match message {
                        Ok(Some(update)) => self.converter.convert(&update),
                        Ok(None) => return Ok(None),
                        Err(status) if is_disconnect(&status) => return Ok(None),
                        Err(status) => {
                            return Err(anyhow!(
                                "the console-subscriber stream from {} broke: {}",
                                self.address,
                                status.message()
                            ));
                        }
                    };
                    self.follow();
                    return Ok(Some(update));
                }
                Some(details) = self.details.recv() => {
                    if let Some(update) = self.converter.details(&details) {
                        return Ok(Some(update));
                    }
                }
            }
        }
    }

    /// Opens details streams for new tasks while there is room, and closes those of tasks
    /// that ended.
    fn follow(&mut self) {
        let (spawned, ended) = self.converter.take_followed();
        for span_id in ended {
            if let Some(stream) = self.followed.remove(&span_id) {
                stream.abort();
            }
        }
        self.followed.retain(|_, stream| !stream.is_finished());
        for span_id in spawned {
            if self.followed.len() >= MAX_FOLLOWED {
                break;
            }
            let mut client = self.client.clone();
            let sender = self.details_sender.clone();
            let stream = tokio::spawn(async move {
                let request = TaskDetailsRequest {
                    id: Some(console_api::Id { id: span_id }),
                };
                // A task that is already gone answers NOT_FOUND: nothing to follow.
                let Ok(response) = client.watch_task_details(request).await else {
                    return;
                };
                let mut details = response.into_inner();
                while let Ok(Some(message)) = details.message().await {
                    if sender.is_closed() {
                        return;
                    }
                    let _ = sender.try_send(message);
                }
            });
            self.followed.insert(span_id, stream.abort_handle());
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        for stream in self.followed.values() {
            stream.abort();
        }
    }
}
