//! A watching client's feed: updates queued for it, bounded in bytes as well as in count.
//!
//! A client slower than the app (a dashboard over a slow link, a process stopped in a
//! debugger) must never make the probe hold unbounded memory inside the app. Counting
//! updates is not enough: an update is up to 1 MiB, and a churning app fills every one, so
//! 1,024 queued updates meant up to a gigabyte (`churn` with a watcher grew by 323 MiB).
//! Each feed therefore counts the encoded bytes it holds; a client that falls further
//! behind than [`BUDGET`] is told why and disconnected, and reconnects to a fresh
//! snapshot, as it would after a network hiccup.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use prost::Message;
use taskscope_api::v1;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::Status;

/// Updates queued per watcher at most.
const MAX_UPDATES: usize = 1024;
/// Bytes queued per watcher at most, beyond its first snapshot.
pub(crate) const BUDGET: usize = 16 * 1024 * 1024;

type Item = Result<v1::Update, Status>;

/// The probe's end of a watcher's feed.
pub(crate) struct Watcher {
    sender: mpsc::Sender<Item>,
    queued: Arc<AtomicUsize>,
    /// Most bytes this feed may hold: the budget, or twice a larger first snapshot.
    limit: usize,
}

/// The server's end: the stream handed to tonic, which gives back the bytes it takes.
pub(crate) struct Feed {
    receiver: mpsc::Receiver<Item>,
    queued: Arc<AtomicUsize>,
}

/// A new feed starting with `snapshot`; `None` when the snapshot alone cannot be queued
/// (then the feed carries only the reason).
pub(crate) fn open(snapshot: Vec<v1::Update>) -> (Option<Watcher>, Feed) {
    let (sender, receiver) = mpsc::channel(MAX_UPDATES);
    let queued = Arc::new(AtomicUsize::new(0));
    let feed = Feed {
        receiver,
        queued: queued.clone(),
    };
    if snapshot.len() >= MAX_UPDATES {
        let _ = sender.try_send(Err(Status::resource_exhausted(
            "the probe's state is too large to stream",
        )));
        return (None, feed);
    }
    let bytes: usize = snapshot.iter().map(Message::encoded_len).sum();
    let mut watcher = Watcher {
        sender,
        queued,
        limit: BUDGET.max(bytes.saturating_mul(2)),
    };
    for update in snapshot {
        watcher.offer(&update);
    }
    (Some(watcher), feed)
}

impl Watcher {
    /// Queues `update`; `false` when the client has gone, or fell too far behind (then it
    /// is told why, and dropped by the caller).
    pub(crate) fn offer(&mut self, update: &v1::Update) -> bool {
        let size = update.encoded_len();
        let queued = self.queued.load(Ordering::Relaxed);
        if queued.saturating_add(size) > self.limit {
            let _ = self.sender.try_send(Err(Status::resource_exhausted(format!(
                "this client fell behind the probe by more than {} MiB of updates; \
                     reconnect to start again from a fresh snapshot",
                self.limit / (1024 * 1024)
            ))));
            return false;
        }
        self.queued.fetch_add(size, Ordering::Relaxed);
        if self.sender.try_send(Ok(update.clone())).is_err() {
            self.queued.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        true
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

impl Stream for Feed {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let polled = self.receiver.poll_recv(cx);
        if let Poll::Ready(Some(Ok(update))) = &polled {
            let size = update.encoded_len();
            // Never below zero: the snapshot's first updates are counted like any other.
            let _ = self
                .queued
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                    Some(q.saturating_sub(size))
                });
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    fn update_of(bytes: usize) -> v1::Update {
        v1::Update {
            process: Some(v1::ProcessInfo {
                program: "x".repeat(bytes),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_client_that_keeps_up_gets_everything() {
        let (watcher, mut feed) = open(vec![update_of(10)]);
        let mut watcher = watcher.unwrap();
        for _ in 0..100 {
            assert!(watcher.offer(&update_of(1024 * 1024)));
            assert!(feed.next().await.unwrap().is_ok());
        }
        assert!(feed.next().await.unwrap().is_ok(), "the snapshot");
        assert_eq!(feed.queued.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_is_told_why_and_dropped() {
        let (watcher, mut feed) = open(Vec::new());
        let mut watcher = watcher.unwrap();
        let big = update_of(1024 * 1024);
        let mut offered = 0;
        while watcher.offer(&big) {
            offered += 1;
            assert!(offered < 100, "the budget never ran out");
        }
        // Bounded in bytes long before the count bound.
        assert!(offered <= BUDGET / (1024 * 1024), "{offered}");
        drop(watcher);
        let mut last = None;
        while let Some(item) = feed.next().await {
            last = Some(item);
        }
        let status = last.unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("fell behind"), "{status:?}");
    }

    #[tokio::test]
    async fn a_large_first_snapshot_still_goes_out() {
        let snapshot: Vec<_> = (0..20).map(|_| update_of(1024 * 1024)).collect();
        let (watcher, mut feed) = open(snapshot);
        let mut watcher = watcher.expect("a 20 MiB snapshot is accepted");
        assert!(watcher.offer(&update_of(100)));
        let mut received = 0;
        while let Ok(Some(item)) =
            tokio::time::timeout(std::time::Duration::from_millis(50), feed.next()).await
        {
            assert!(item.is_ok());
            received += 1;
        }
        assert_eq!(received, 21);
    }
}
