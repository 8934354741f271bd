//! A watching client's feed: updates queued for it, bounded in bytes as well as in count.
//!
//! A client slower than the app (a dashboard over a slow link, a process stopped in a
//! debugger) must never make the probe hold unbounded memory inside the app. Counting
//! updates is not enough: an update is up to 1 MiB, and a churning app fills every one, so
//! 1,024 queued updates meant up to a gigabyte (`churn` with a watcher grew by 323 MiB).
//! Each feed therefore holds its updates *encoded*, and counts those bytes: a decoded
//! update takes several times its encoded size in the heap (every string and list is its
//! own allocation), so counting encoded bytes while holding decoded ones let an unread
//! watcher of a 5,000-task app cost 65 MB against a 16 MiB budget. Encoded updates are
//! also shared: one publish is encoded once, and every feed holds the same bytes. A
//! client that falls further behind than [`BUDGET`] has its queue dropped at once (the
//! memory comes back even if it never reads again), is told why, and reconnects to a fresh
//! snapshot, as it would after a network hiccup.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use prost::Message;
use prost::bytes::Bytes;
use taskscope_api::v1;
use tokio_stream::Stream;
use tonic::Status;

/// Updates queued per watcher at most.
const MAX_UPDATES: usize = 1024;
/// Bytes queued per watcher at most, beyond its first snapshot.
pub(crate) const BUDGET: usize = 16 * 1024 * 1024;

type Item = Result<v1::Update, Status>;

/// An update encoded once, for every feed to share.
#[derive(Clone)]
pub(crate) struct Encoded(Bytes);

impl Encoded {
    pub(crate) fn new(update: &v1::Update) -> Self {
        Self(Bytes::from(update.encode_to_vec()))
    }
}

/// What both ends share: the queue, and whether either end has gone.
#[derive(Default)]
struct Queue {
    updates: VecDeque<Bytes>,
    bytes: usize,
    /// The last word, after the updates: why the feed ends.
    refusal: Option<Status>,
    /// The probe's end is gone: the feed ends once the queue is empty.
    watcher_gone: bool,
    /// The server's end is gone (the client left): the probe drops this watcher.
    feed_gone: bool,
    waker: Option<Waker>,
}

type Shared = Arc<Mutex<Queue>>;

fn lock(queue: &Shared) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// The probe's end of a watcher's feed.
pub(crate) struct Watcher {
    queue: Shared,
    /// Most bytes this feed may hold: the budget, or twice a larger first snapshot.
    limit: usize,
}

/// The server's end: the stream handed to tonic.
pub(crate) struct Feed {
    queue: Shared,
}

/// A feed that carries only `status`: the watch was refused.
pub(crate) fn refused(status: Status) -> Feed {
    let queue = Queue {
        refusal: Some(status),
        watcher_gone: true,
        ..Queue::default()
    };
    Feed {
        queue: Arc::new(Mutex::new(queue)),
    }
}

/// A new feed starting with `snapshot`; `None` when the snapshot alone cannot be queued
/// (then the feed carries only the reason).
pub(crate) fn open(snapshot: Vec<v1::Update>) -> (Option<Watcher>, Feed) {
    if snapshot.len() >= MAX_UPDATES {
        let status = Status::resource_exhausted("the probe's state is too large to stream");
        return (None, refused(status));
    }
    let snapshot: Vec<Encoded> = snapshot.iter().map(Encoded::new).collect();
    let bytes: usize = snapshot.iter().map(|update| update.0.len()).sum();
    let queue = Shared::default();
    let mut watcher = Watcher {
        queue: queue.clone(),
        limit: BUDGET.max(bytes.saturating_mul(2)),
    };
    for update in &snapshot {
        watcher.offer(update);
    }
    (Some(watcher), Feed { queue })
}

impl Watcher {
    /// Queues `update`; `false` when the client has gone, or fell too far behind (then its
    /// queue is dropped, it is told why, and the caller drops it).
    pub(crate) fn offer(&mut self, update: &Encoded) -> bool {
        let mut queue = lock(&self.queue);
        if queue.feed_gone {
            return false;
        }
        let size = update.0.len();
        if queue.bytes.saturating_add(size) > self.limit || queue.updates.len() >= MAX_UPDATES {
            queue.updates = VecDeque::new();
            queue.bytes = 0;
            queue.refusal = Some(Status::resource_exhausted(format!(
                "this client fell behind the probe by more than {} MiB of updates; \
                 reconnect to start again from a fresh snapshot",
                self.limit / (1024 * 1024)
            )));
            wake(&mut queue);
            return false;
        }
        queue.bytes += size;
        queue.updates.push_back(update.0.clone());
        wake(&mut queue);
        true
    }

    /// Whether the client has gone.
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.queue).feed_gone
    }

    /// Whether everything queued has been handed to the client's connection (or the
    /// client has gone).
    pub(crate) fn is_drained(&self) -> bool {
        let queue = lock(&self.queue);
        queue.feed_gone || queue.updates.is_empty()
    }
}

fn wake(queue: &mut Queue) {
    if let Some(waker) = queue.waker.take() {
        waker.wake();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let mut queue = lock(&self.queue);
        queue.watcher_gone = true;
        wake(&mut queue);
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let mut queue = lock(&self.queue);
        queue.feed_gone = true;
        queue.updates = VecDeque::new();
        queue.bytes = 0;
    }
}

impl Stream for Feed {
    type Item = Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let mut queue = lock(&self.queue);
        if let Some(bytes) = queue.updates.pop_front() {
            queue.bytes -= bytes.len();
            drop(queue);
            // Decoding what this process encoded cannot fail; say so if it ever does.
            let update = v1::Update::decode(bytes)
                .map_err(|e| Status::internal(format!("the probe garbled an update: {e}")));
            return Poll::Ready(Some(update));
        }
        if let Some(status) = queue.refusal.take() {
            queue.watcher_gone = true;
            return Poll::Ready(Some(Err(status)));
        }
        if queue.watcher_gone {
            return Poll::Ready(None);
        }
        queue.waker = Some(cx.waker().clone());
        Poll::Pending
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
            assert!(watcher.offer(&Encoded::new(&update_of(1024 * 1024))));
            assert!(feed.next().await.unwrap().is_ok());
        }
        assert!(feed.next().await.unwrap().is_ok(), "the snapshot");
        assert_eq!(lock(&feed.queue).bytes, 0);
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_is_told_why_and_dropped() {
        let (watcher, mut feed) = open(Vec::new());
        let mut watcher = watcher.unwrap();
        let big = Encoded::new(&update_of(1024 * 1024));
        let mut offered = 0;
        while watcher.offer(&big) {
            offered += 1;
            assert!(offered < 100, "the budget never ran out");
        }
        // Bounded in bytes long before the count bound.
        assert!(offered <= BUDGET / (1024 * 1024), "{offered}");
        // What it held is given back before it reads anything.
        assert_eq!(lock(&feed.queue).bytes, 0);
        assert!(lock(&feed.queue).updates.is_empty());
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
        assert!(watcher.offer(&Encoded::new(&update_of(100))));
        let mut received = 0;
        while let Ok(Some(item)) =
            tokio::time::timeout(std::time::Duration::from_millis(50), feed.next()).await
        {
            assert!(item.is_ok());
            received += 1;
        }
        assert_eq!(received, 21);
    }

    #[tokio::test]
    async fn a_client_that_leaves_closes_its_watcher_and_frees_its_queue() {
        let (watcher, feed) = open(vec![update_of(1000)]);
        let mut watcher = watcher.unwrap();
        assert!(!watcher.is_closed());
        drop(feed);
        assert!(watcher.is_closed());
        assert!(!watcher.offer(&Encoded::new(&update_of(10))));
        assert!(lock(&watcher.queue).updates.is_empty());
    }

    #[tokio::test]
    async fn a_refused_watch_says_why_and_ends() {
        let mut feed = refused(Status::resource_exhausted("too many"));
        let status = feed.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(feed.next().await.is_none());
    }
}
