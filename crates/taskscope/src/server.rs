//! The gRPC server (`taskscope.v1.Probe`) on TCP or a Unix socket.
//!
//! The listener is bound on the thread that starts the probe, so that "address in use"
//! is reported at once, where the person starting the app sees it; serving happens on the
//! probe's own runtime.

use std::io;

use taskscope_api::v1;
use taskscope_api::v1::probe_server::{Probe, ProbeServer};
use tokio::sync::{mpsc, oneshot};
use tonic::transport::server::Router;
use tonic::{Request, Response, Status};

use crate::config::Bind;
use crate::runner::Command;

/// A bound listener, not yet serving.
pub(crate) enum Listener {
    Tcp(std::net::TcpListener),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener),
}

/// Binds the probe's address; `Ok(None)` when serving is off.
pub(crate) fn bind(bind: &Bind) -> io::Result<Option<Listener>> {
    match bind {
        Bind::Off => Ok(None),
        Bind::Tcp(addr) => {
            let listener = std::net::TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            Ok(Some(Listener::Tcp(listener)))
        }
        #[cfg(unix)]
        Bind::Unix(path) => {
            remove_stale_socket(path);
            let listener = std::os::unix::net::UnixListener::bind(path)?;
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

/// Serves until the listener fails. Must run inside the probe's runtime.
pub(crate) async fn serve(listener: Listener, commands: mpsc::UnboundedSender<Command>) {
    let service = ProbeServer::new(ProbeService { commands });
    let router = tonic::transport::Server::builder().add_service(service);
    serve_router(router, listener, "the gRPC server").await;
}

/// Serves `router` on `listener` until it fails, saying on stderr why (`what` names the
/// server). Must run inside a tokio runtime.
pub(crate) async fn serve_router(router: Router, listener: Listener, what: &str) {
    let result = match listener {
        Listener::Tcp(listener) => match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                router
                    .serve_with_incoming(incoming)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        },
        #[cfg(unix)]
        Listener::Unix(listener) => match tokio::net::UnixListener::from_std(listener) {
            Ok(listener) => {
                let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
                router
                    .serve_with_incoming(incoming)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        },
    };
    if let Err(e) = result {
        crate::diag::warn(&format!("{what} stopped: {e}"));
    }
}

struct ProbeService {
    commands: mpsc::UnboundedSender<Command>,
}

fn probe_gone() -> Status {
    Status::unavailable("the taskscope probe is shutting down")
}

#[tonic::async_trait]
impl Probe for ProbeService {
    type WatchStream = crate::watchers::Feed;

    async fn watch(
        &self,
        _request: Request<v1::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (reply, receiver) = oneshot::channel();
        self.commands
            .send(Command::Watch(reply))
            .map_err(|_| probe_gone())?;
        let feed = receiver.await.map_err(|_| probe_gone())?;
        Ok(Response::new(feed))
    }

    async fn snapshot(
        &self,
        request: Request<v1::SnapshotRequest>,
    ) -> Result<Response<v1::SnapshotPage>, Status> {
        let (reply, receiver) = oneshot::channel();
        let page = request.into_inner().page_token;
        self.commands
            .send(Command::Snapshot { page, reply })
            .map_err(|_| probe_gone())?;
        let page = receiver.await.map_err(|_| probe_gone())?;
        page.map(Response::new)
            .ok_or_else(|| Status::out_of_range("no such snapshot page; start again at 0"))
    }
}
