//! The gRPC server (`taskscope.v1.Probe`) on TCP or a Unix socket.
//!
//! The listener is bound on the thread that starts the probe, so that "address in use"
//! is reported at once, where the person starting the app sees it; serving happens on the
//! probe's own runtime.
//!
//! Every client is a possible adversary of the app (`docs/security.md`): the server
//! bounds what one can make the app hold: connections (`connections.rs`), streams per
//! connection, watchers (`runner.rs`), bytes per watcher (`watchers.rs`), and closes
//! connections that go silent (HTTP/2 keepalive).

use std::io;
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};
use taskscope_api::v1;
use taskscope_api::v1::probe_server::{Probe, ProbeServer};
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Server;
use tonic::transport::server::Router;
use tonic::{Request, Response, Status};

use crate::base::auth::Token;
use crate::base::config::{Bind, Limits};
use crate::serve::command::Command;

/// Concurrent streams (calls) per HTTP/2 connection: one dashboard needs one.
pub(crate) const STREAMS_PER_CONNECTION: u32 = 8;
/// A connection is pinged after this long without traffic...
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// ...and closed when the ping is not answered within this (a peer gone silent, or a
/// half-open connection whose other end vanished).
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Requests are empty or a page number: anything larger is not from a client of ours.
const MAX_REQUEST: usize = 64 * 1024;
/// Request headers per call: a token and a few standard ones.
const MAX_HEADERS: u32 = 16 * 1024;

/// A bound listener, not yet serving.
pub(crate) enum Listener {
    Tcp(std::net::TcpListener),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener),
}

/// Binds the probe's address; `Ok(None)` when serving is off. An address other than
/// loopback is refused unless `allow_remote` (and then a warning says what it exposes).
pub(crate) fn bind(bind: &Bind, allow_remote: bool) -> io::Result<Option<Listener>> {
    if let Bind::Tcp(addr) = bind
        && !addr.ip().is_loopback()
    {
        refuse_remote(addr, allow_remote)?;
        crate::base::diag::warn(&format!(
            "serving on {addr}, beyond this host (TASKSCOPE_ALLOW_REMOTE): clients need \
             the token, and the traffic is encrypted only with TASKSCOPE_TLS_CERT and \
             TASKSCOPE_TLS_KEY; prefer an SSH tunnel to a loopback address"
        ));
    }
    bind_listener(bind)
}

/// Refuses an address beyond loopback unless `allow_remote` (TASKSCOPE_ALLOW_REMOTE).
pub(crate) fn refuse_remote(addr: &std::net::SocketAddr, allow_remote: bool) -> io::Result<()> {
    if addr.ip().is_loopback() || allow_remote {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} is not a loopback address, and serving the app's internals beyond this \
             host needs TASKSCOPE_ALLOW_REMOTE=1",
            addr.ip()
        ),
    ))
}

/// Connections the kernel may hold, connected, until the probe accepts them (capped by
/// `net.core.somaxconn`). Beyond a full queue the kernel drops a client's connection
/// request, and the client tries again only 1 s, then 3 s later: with std's 128, a crowd
/// of a few hundred connections opened in a loop could hold a real client that long
/// before the probe ever saw it, while 1,024 take a moment to accept.
const BACKLOG: i32 = 1024;

/// Binds `bind` as it is, non-blocking; `Ok(None)` for `off`.
pub(crate) fn bind_listener(bind: &Bind) -> io::Result<Option<Listener>> {
    match bind {
        Bind::Off => Ok(None),
        Bind::Tcp(addr) => {
            let socket = Socket::new(Domain::for_address(*addr), Type::STREAM, None)?;
            // As std does: a restarted app may bind while its old connections linger.
            socket.set_reuse_address(true)?;
            socket.bind(&(*addr).into())?;
            socket.listen(BACKLOG)?;
            socket.set_nonblocking(true)?;
            Ok(Some(Listener::Tcp(socket.into())))
        }
        #[cfg(unix)]
        Bind::Unix(path) => {
            remove_stale_socket(path);
            let listener = bind_private_unix(path)?;
            listener.set_nonblocking(true)?;
            Ok(Some(Listener::Unix(listener)))
        }
        #[cfg(not(unix))]
        Bind::Unix(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "Unix sockets are not supported on this platform",
        )),
    }
}

/// A socket file left behind by an earlier run would make `bind` fail; one that nobody
/// answers on is safe to replace.
#[cfg(unix)]
fn remove_stale_socket(path: &std::path::Path) {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if is_socket && std::os::unix::net::UnixStream::connect(path).is_err() {
        let _ = std::fs::remove_file(path);
    }
}

/// Binds a Unix socket that only this user can connect to, whatever the umask: the file
/// is made 0600 before the socket listens, so there is no moment when another user could
/// connect.
#[cfg(unix)]
fn bind_private_unix(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let address = SockAddr::unix(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            "the socket path is too long (at most 107 bytes on Linux, 103 on macOS)",
        )
    })?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&address)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Serves until the listener fails. Must run inside the probe's runtime.
pub(crate) async fn serve(
    listener: Listener,
    commands: mpsc::UnboundedSender<Command>,
    limits: Limits,
    token: Token,
    tls: Option<crate::serve::tls::ServerTls>,
) {
    let probe = ProbeServer::new(ProbeService { commands }).max_decoding_message_size(MAX_REQUEST);
    let mut server = match tls.map_or(Ok(server()), |tls| tls.apply(server())) {
        Ok(server) => server,
        Err(e) => {
            crate::base::diag::warn(&format!(
                "the gRPC server cannot use TLS ({e}); not serving"
            ));
            return;
        }
    };
    let router = server.add_service(crate::serve::gate::Gate::new(probe, token));
    serve_router(router, listener, limits.max_connections, "the gRPC server").await;
}

/// A gRPC server with the limits every client is held to.
pub(crate) fn server() -> Server {
    Server::builder()
        .max_concurrent_streams(STREAMS_PER_CONNECTION)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .http2_max_header_list_size(MAX_HEADERS)
}

/// Serves `router` on `listener` until it fails, saying on stderr why (`what` names the
/// server), with at most `max_connections` connections at once. Must run inside a tokio
/// runtime.
pub(crate) async fn serve_router(
    router: Router,
    listener: Listener,
    max_connections: usize,
    what: &str,
) {
    use crate::serve::connections::incoming;
    let result = match listener {
        Listener::Tcp(listener) => match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => router
                .serve_with_incoming(incoming(listener, max_connections))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        #[cfg(unix)]
        Listener::Unix(listener) => match tokio::net::UnixListener::from_std(listener) {
            Ok(listener) => router
                .serve_with_incoming(incoming(listener, max_connections))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
    };
    if let Err(e) = result {
        crate::base::diag::warn(&format!("{what} stopped: {e}"));
    }
}

struct ProbeService {
    commands: mpsc::UnboundedSender<Command>,
}

fn probe_gone() -> Status {
    Status::unavailable("the taskscope probe is shutting down")
}

impl ProbeService {
    /// Hands the probe's thread the command `command` makes with a reply's sender, and
    /// waits for the reply.
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, Status>>) -> Command,
    ) -> Result<T, Status> {
        let (reply, receiver) = oneshot::channel();
        self.commands
            .send(command(reply))
            .map_err(|_| probe_gone())?;
        receiver.await.map_err(|_| probe_gone())?
    }
}

/// A call's answer; a refusal for load (`RESOURCE_EXHAUSTED`) is sent after the gate's
/// delay, as every refusal is.
async fn answer<T>(reply: Result<T, Status>) -> Result<Response<T>, Status> {
    match reply {
        Ok(answer) => Ok(Response::new(answer)),
        Err(status) if status.code() == tonic::Code::ResourceExhausted => {
            crate::serve::gate::refuse(status).await
        }
        Err(status) => Err(status),
    }
}

#[tonic::async_trait]
impl Probe for ProbeService {
    type WatchStream = crate::aggregate::watchers::Feed;

    async fn watch(
        &self,
        _request: Request<v1::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        match self.ask(Command::Watch).await {
            Ok(feed) => Ok(Response::new(feed)),
            Err(status) => crate::serve::gate::refuse(status).await,
        }
    }

    async fn snapshot(
        &self,
        request: Request<v1::SnapshotRequest>,
    ) -> Result<Response<v1::SnapshotPage>, Status> {
        let page = request.into_inner().page_token;
        answer(self.ask(|reply| Command::Snapshot { page, reply }).await).await
    }

    async fn dump(&self, _request: Request<v1::DumpRequest>) -> Result<Response<v1::Dump>, Status> {
        self.ask(Command::Dump).await.map(Response::new)
    }

    async fn flight(
        &self,
        request: Request<v1::FlightRequest>,
    ) -> Result<Response<v1::FlightWindow>, Status> {
        let span_ns = request.into_inner().span_ns;
        answer(self.ask(|reply| Command::Flight { span_ns, reply }).await).await
    }
}
