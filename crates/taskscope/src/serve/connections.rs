//! Accepting connections within limits: at most [`Limits::max_connections`](crate::base::config::Limits::max_connections) at once, each
//! closed unless it has sent its HTTP/2 preface within [`HANDSHAKE_TIMEOUT`], and an
//! accept loop that backs off instead of spinning when the process runs out of file
//! descriptors.
//!
//! hyper closes an HTTP/2 connection whose peer stops answering pings (keepalive, set in
//! `server.rs`), but only once the connection is established: a peer that connects and
//! sends nothing would otherwise hold a file descriptor and a task forever, and 120 of them
//! exhausted a 64-descriptor limit, after which the accept loop failed at full speed and
//! no real client got in.
//!
//! At the limit, a new connection takes the place of the oldest one that has not yet
//! proved itself, that is made a call that passed the gate (`gate.rs`: the token where
//! one is needed), and is closed at once only when every place is held by a proven one.
//! Closing the newcomer instead let anything that keeps the limit's worth of silent
//! connections open (a port scanner, a health checker, a local process re-opening them in
//! a loop) lock the operator out for as long as it kept at it. A real client proves
//! itself within milliseconds of connecting, long before the limit's worth of newcomers
//! that would make it the oldest; a proven client is never closed for a newcomer.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// How long a new connection may take to send the HTTP/2 preface.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The client preface (24 bytes) and the header of its first SETTINGS frame (9 bytes).
const HANDSHAKE_BYTES: usize = 33;
/// The pause after a failed accept (out of descriptors, mostly) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A listener the accept loop can take connections from.
pub(crate) trait Accept: Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static;
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>>;
}

impl Accept for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>> {
        tokio::net::TcpListener::poll_accept(self, cx).map_ok(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        })
    }
}

#[cfg(unix)]
impl Accept for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>> {
        tokio::net::UnixListener::poll_accept(self, cx).map_ok(|(stream, _)| stream)
    }
}

/// The connections `listener` accepts, as a stream for tonic. Beyond `max_connections`,
/// a newcomer takes the place of the oldest connection not yet proven ([`Admitted`]), or
/// is closed as soon as it is accepted when every connection is proven.
pub(crate) fn incoming<L: Accept>(
    listener: L,
    max_connections: usize,
) -> ReceiverStream<io::Result<Guarded<L::Io>>> {
    let (sender, receiver) = mpsc::channel(1);
    let places = Arc::new(Places::new(max_connections));
    tokio::spawn(async move {
        let mut warned = false;
        loop {
            let io = match std::future::poll_fn(|cx| listener.poll_accept(cx)).await {
                Ok(io) => io,
                Err(e) => {
                    if !std::mem::replace(&mut warned, true) {
                        crate::base::diag::warn(&format!(
                            "cannot accept a connection: {e}; retrying every {} ms",
                            ACCEPT_BACKOFF.as_millis()
                        ));
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            // Every place proven: closed at once (dropped), which the client sees as a reset.
            let Some(place) = places.admit() else {
                continue;
            };
            let guarded = Guarded {
                io,
                place,
                handshake: Some(Box::pin(tokio::time::sleep(HANDSHAKE_TIMEOUT))),
                read: 0,
            };
            if sender.send(Ok(guarded)).await.is_err() {
                break;
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// The places connections hold, in the order they arrived.
struct Places {
    max: usize,
    held: Mutex<Held>,
}

struct Held {
    /// The number the next connection gets: numbers only grow, so the smallest is the oldest.
    next: u64,
    connections: BTreeMap<u64, Holder>,
}

/// What the places keep of a connection: whether it proved itself, and the means to
/// close it.
struct Holder {
    admitted: Admitted,
    /// Dropped to close the connection (its reads fail from then on).
    _evict: oneshot::Sender<()>,
}

impl Places {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            held: Mutex::new(Held {
                next: 0,
                connections: BTreeMap::new(),
            }),
        }
    }

    /// A place for a new connection: a free one, or that of the oldest connection not
    /// yet proven, which is closed; `None` when every place is held by a proven one.
    fn admit(self: &Arc<Self>) -> Option<Place> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.connections.len() >= self.max {
            // A linear scan, only at the limit: the places are few (32 by default), and
            // keeping proven and unproven connections apart would cost every call a lock.
            let oldest = held
                .connections
                .iter()
                .find(|(_, holder)| !holder.admitted.proven())
                .map(|(&number, _)| number)?;
            // Dropping its holder drops the sender its reads listen to.
            held.connections.remove(&oldest);
        }
        let number = held.next;
        held.next += 1;
        let admitted = Admitted(Arc::new(AtomicBool::new(false)));
        let (evict, evicted) = oneshot::channel();
        held.connections.insert(
            number,
            Holder {
                admitted: admitted.clone(),
                _evict: evict,
            },
        );
        Some(Place {
            places: self.clone(),
            number,
            admitted,
            evicted: Some(evicted),
        })
    }
}

/// A connection's place, given back when the connection is closed.
struct Place {
    places: Arc<Places>,
    number: u64,
    admitted: Admitted,
    /// Ready once the place was given to a newcomer; `None` once that was seen.
    evicted: Option<oneshot::Receiver<()>>,
}

impl Place {
    /// Whether the place was given to a newcomer; wakes `cx` when it is.
    fn poll_evicted(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(evicted) = self.evicted.as_mut() else {
            return true;
        };
        if Pin::new(evicted).poll(cx).is_pending() {
            return false;
        }
        self.evicted = None;
        true
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut held = self.places.held.lock().unwrap_or_else(|e| e.into_inner());
        held.connections.remove(&self.number);
    }
}

/// Whether a connection has proved itself: made a call that passed the gate (`gate.rs`),
/// or a request to the metrics endpoint. tonic puts it in every request's extensions (it
/// is the connections' `ConnectInfo`), where the gate finds it.
#[derive(Clone, Debug)]
pub(crate) struct Admitted(Arc<AtomicBool>);

impl Admitted {
    /// The connection made a call that passed the gate: it keeps its place until it closes.
    pub(crate) fn prove(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn proven(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// An accepted connection: holds its place until closed, and fails its reads once the
/// handshake is overdue or its place was given to a newcomer. hyper always has a read
/// pending on a connection it serves, so a failed read is how it learns to close it.
pub(crate) struct Guarded<Io> {
    io: Io,
    place: Place,
    /// Until the preface has arrived.
    handshake: Option<Pin<Box<tokio::time::Sleep>>>,
    read: usize,
}

impl<Io> Guarded<Io> {
    /// What marks this connection proven.
    pub(crate) fn admitted(&self) -> Admitted {
        self.place.admitted.clone()
    }
}

impl<Io> Connected for Guarded<Io> {
    type ConnectInfo = Admitted;
    fn connect_info(&self) -> Admitted {
        self.admitted()
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Guarded<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.place.poll_evicted(cx) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed to make room for a new connection: this one had made no call",
            )));
        }
        if let Some(deadline) = self.handshake.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no HTTP/2 preface in time",
            )));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if self.handshake.is_some() {
            self.read += buf.filled().len() - before;
            if self.read >= HANDSHAKE_BYTES {
                self.handshake = None;
            }
        }
        polled
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Guarded<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_stream::StreamExt;

    use super::*;

    type Incoming = ReceiverStream<io::Result<Guarded<tokio::net::TcpStream>>>;

    /// Connects to `port` and takes the connection the probe's side accepted.
    async fn connect(port: u16, incoming: &mut Incoming) -> (TcpStream, Guarded<TcpStream>) {
        let client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let accepted = tokio::time::timeout(Duration::from_secs(10), incoming.next())
            .await
            .expect("accepted in time")
            .expect("the accept loop runs")
            .expect("accepted");
        (client, accepted)
    }

    /// How a read on the probe's side of a connection ends within a second: `None` while
    /// it is still waiting for the client.
    async fn read_ends(connection: &mut Guarded<TcpStream>) -> Option<io::ErrorKind> {
        let mut buffer = [0; 8];
        match tokio::time::timeout(Duration::from_secs(1), connection.read(&mut buffer)).await {
            Err(_) => None,
            Ok(Ok(read)) => panic!("read {read} bytes from a silent client"),
            Ok(Err(e)) => Some(e.kind()),
        }
    }

    async fn listening() -> (u16, Incoming) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        (port, incoming(listener, 2))
    }

    #[tokio::test]
    async fn a_newcomer_at_the_limit_takes_the_place_of_the_oldest_unproven_connection() {
        let (port, mut incoming) = listening().await;
        let (_a, mut oldest) = connect(port, &mut incoming).await;
        let (_b, mut second) = connect(port, &mut incoming).await;
        let (_c, mut newcomer) = connect(port, &mut incoming).await;
        assert_eq!(
            read_ends(&mut oldest).await,
            Some(io::ErrorKind::ConnectionAborted)
        );
        assert_eq!(read_ends(&mut second).await, None);
        assert_eq!(read_ends(&mut newcomer).await, None);
    }

    #[tokio::test]
    async fn proven_connections_keep_their_places_and_a_newcomer_is_closed() {
        let (port, mut incoming) = listening().await;
        let (_a, mut first) = connect(port, &mut incoming).await;
        first.admitted().prove();
        let (_b, mut second) = connect(port, &mut incoming).await;
        // One place is proven: the unproven one goes, however young.
        let (_c, mut third) = connect(port, &mut incoming).await;
        assert_eq!(
            read_ends(&mut second).await,
            Some(io::ErrorKind::ConnectionAborted)
        );
        third.admitted().prove();
        // Every place is proven: the newcomer is closed as soon as it is accepted.
        let mut refused = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut buffer = [0; 8];
        let read = tokio::time::timeout(Duration::from_secs(10), refused.read(&mut buffer))
            .await
            .expect("the probe closed the newcomer");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert_eq!(read_ends(&mut first).await, None);
        assert_eq!(read_ends(&mut third).await, None);
        // A proven connection that closes frees its place.
        drop(first);
        let (_d, mut fourth) = connect(port, &mut incoming).await;
        assert_eq!(read_ends(&mut fourth).await, None);
    }
}
