//! The link to a live probe: connects, streams, and when the target is down or goes away,
//! retries with backoff — forever, since a dashboard left open should pick a restarted
//! service up on its own.
//!
//! Runs as its own task and reports through a channel, so the dashboard's loop never
//! waits on the network. Dumps asked for (`d`) are taken by a task of their own, on their
//! own connection, and come back through the same channel.

use std::time::Duration;

use taskscope_api::v1::{Dump, Update};
use tokio::sync::mpsc;

use crate::source::Address;
use crate::source::grpc::{self, DumpError};
use crate::source::protocol::{LiveWatch, Options};

/// What the link reports.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// Not connected; trying again in `retry_in`. `reason` says what went wrong last.
    Waiting {
        reason: String,
        retry_in: Duration,
    },
    /// Connected; updates follow.
    Connected,
    Update(Box<Update>),
    /// The stream ended: the process exited, was killed, or the connection broke.
    Lost {
        reason: String,
    },
    /// The answer to a dump asked for with [`Handle::request_dump`].
    Dumped(Result<Box<Dump>, DumpError>),
}

/// The dashboard's end of the link: what it reports, and the way to ask it for a dump.
#[derive(Debug)]
pub(crate) struct Handle {
    pub(crate) events: mpsc::Receiver<LinkEvent>,
    dumps: mpsc::Sender<()>,
}

impl Handle {
    /// Asks for a dump without waiting; `false` when one is already being taken (the
    /// answer to that one is on its way).
    pub(crate) fn request_dump(&self) -> bool {
        self.dumps.try_send(()).is_ok()
    }
}

/// First retry delay; it doubles up to [`MAX_BACKOFF`]. Short, because the usual reason
/// for a refused connection is a service that is just (re)starting.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Starts the link; it stops when the handle is dropped.
pub(crate) fn spawn(address: Address, options: Options) -> Handle {
    // Bounded: a dashboard that cannot keep up slows the stream down rather than
    // buffering without limit (the probe keeps only the latest state anyway).
    let (sender, receiver) = mpsc::channel(256);
    // One dump at a time: a request while one is being taken is refused, not queued.
    let (dumps, requests) = mpsc::channel(1);
    tokio::spawn(take_dumps(
        address.clone(),
        options.connect_timeout,
        requests,
        sender.clone(),
    ));
    tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match LiveWatch::attempt(&address, options).await {
                Ok(mut watch) => {
                    backoff = FIRST_BACKOFF;
                    if sender.send(LinkEvent::Connected).await.is_err() {
                        return;
                    }
                    let reason = loop {
                        match watch.next().await {
                            Ok(Some(update)) => {
                                if sender
                                    .send(LinkEvent::Update(Box::new(update)))
                                    .await
                                    .is_err()
                                {
                                    return;
                                }
                            }
                            Ok(None) => break "the process closed the stream".to_owned(),
                            Err(error) => break format!("{error:#}"),
                        }
                    };
                    if sender.send(LinkEvent::Lost { reason }).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let event = LinkEvent::Waiting {
                        reason: format!("{error:#}"),
                        retry_in: backoff,
                    };
                    if sender.send(event).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    });
    Handle {
        events: receiver,
        dumps,
    }
}

/// Takes a dump for each request, until the dashboard goes away.
async fn take_dumps(
    address: Address,
    connect_timeout: Duration,
    mut requests: mpsc::Receiver<()>,
    sender: mpsc::Sender<LinkEvent>,
) {
    while requests.recv().await.is_some() {
        let answer = grpc::dump(&address, connect_timeout).await.map(Box::new);
        if sender.send(LinkEvent::Dumped(answer)).await.is_err() {
            return;
        }
    }
}
