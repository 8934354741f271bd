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

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
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

/// The connections `listener` accepts, as a stream for tonic. Connections beyond
/// `max_connections` are closed as soon as they are accepted.
pub(crate) fn incoming<L: Accept>(
    listener: L,
    max_connections: usize,
) -> ReceiverStream<io::Result<Guarded<L::Io>>> {
    let (sender, receiver) = mpsc::channel(1);
    let slots = Arc::new(Semaphore::new(max_connections));
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
            // Over the limit: closed at once (dropped), which the client sees as a reset.
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let guarded = Guarded {
                io,
                _slot: slot,
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

/// An accepted connection: holds its slot until closed, and fails its reads once the
/// handshake is overdue.
pub(crate) struct Guarded<Io> {
    io: Io,
    _slot: OwnedSemaphorePermit,
    /// Until the preface has arrived.
    handshake: Option<Pin<Box<tokio::time::Sleep>>>,
    read: usize,
}

impl<Io: Connected> Connected for Guarded<Io> {
    type ConnectInfo = Io::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Guarded<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
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
