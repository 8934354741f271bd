//! The Prometheus endpoint: `GET /metrics` over HTTP/1.1, on the probe's own runtime,
//! answered from the text `export/metrics/` keeps written.
//!
//! Anyone who reaches the port can scrape (`docs/security.md`), so a scraper is held to
//! what the gRPC server holds its clients to (`connections.rs`): at most
//! `TASKSCOPE_MAX_CONNECTIONS` connections at once (a newcomer taking the place of the
//! oldest that has sent no request), each closed unless its first bytes arrive within the
//! handshake timeout; then the request's head must be complete within
//! [`HEAD_TIMEOUT`] and fit in [`MAX_HEAD`], one request is answered per connection, and
//! no connection lives past [`CONNECTION_LIFETIME`] (a scraper that never reads the answer
//! gives up its connection then). Answers are the text already written for the latest
//! refresh (`exposition.rs`): a scrape never makes the probe gather anything.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prost::bytes::Bytes;
use tokio_stream::StreamExt;

use crate::base::config::{Bind, Config};
use crate::export::metrics::{Board, Format, Tally};
use crate::serve::connections::{Accept, incoming};
use crate::serve::server::Listener;

/// The path scrapers ask for.
pub(crate) const PATH: &str = "/metrics";
/// How long a request's line and headers may take to arrive.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// The most a request's line and headers may take (hyper's smallest buffer).
const MAX_HEAD: usize = 8 * 1024;
/// The longest any connection is kept, answer included.
pub(crate) const CONNECTION_LIFETIME: Duration = Duration::from_secs(10);

/// Binds the metrics address on the thread that starts the probe, so that a busy port is
/// reported at once; `None` when the endpoint is off or cannot listen (the app runs on).
pub(crate) fn bind(config: &Config) -> Option<Listener> {
    let bind = &config.metrics.bind;
    let bound = match bind {
        Bind::Tcp(addr) if !addr.ip().is_loopback() => {
            crate::serve::server::refuse_remote(addr, config.allow_remote).inspect(|()| {
                crate::base::diag::warn(&format!(
                    "serving metrics on {addr}, beyond this host (TASKSCOPE_ALLOW_REMOTE): \
                     anyone who reaches it can read them, without a token"
                ));
            })
        }
        _ => Ok(()),
    }
    .and_then(|()| crate::serve::server::bind_listener(bind));
    bound.unwrap_or_else(|e| {
        crate::base::diag::warn(&format!(
            "cannot serve metrics on {bind}: {e}; the probe runs without its metrics \
             endpoint (set TASKSCOPE_METRICS_BIND to a free address, or off)"
        ));
        None
    })
}

/// Starts serving on the probe's runtime; returns the tally the aggregator keeps.
pub(crate) fn start(config: &Config, listener: Listener) -> Tally {
    let board = Arc::new(Board::default());
    tokio::spawn(serve(
        listener,
        board.clone(),
        config.limits.max_connections,
    ));
    Tally::new(config, board)
}

/// Serves `board` on `listener` until it fails. Must run inside the probe's runtime.
async fn serve(listener: Listener, board: Arc<Board>, max_connections: usize) {
    let result = match listener {
        Listener::Tcp(listener) => match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                accept(listener, board, max_connections).await;
                Ok(())
            }
            Err(e) => Err(e),
        },
        #[cfg(unix)]
        Listener::Unix(listener) => match tokio::net::UnixListener::from_std(listener) {
            Ok(listener) => {
                accept(listener, board, max_connections).await;
                Ok(())
            }
            Err(e) => Err(e),
        },
    };
    if let Err(e) = result {
        crate::base::diag::warn(&format!("the metrics endpoint stopped: {e}"));
    }
}

async fn accept<L: Accept>(listener: L, board: Arc<Board>, max_connections: usize) {
    let mut connections = incoming(listener, max_connections);
    while let Some(connection) = connections.next().await {
        let Ok(io) = connection else { continue };
        let board = board.clone();
        let admitted = io.admitted();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                // A request keeps the connection's place until it is answered.
                admitted.prove();
                std::future::ready(answer(&board, &request))
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .keep_alive(false)
                .serve_connection(TokioIo::new(io), service);
            // Past its lifetime, the connection is dropped, which closes it.
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
        });
    }
}

/// The answer to one request.
fn answer(board: &Board, request: &Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != PATH {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "taskscope serves its metrics at /metrics\n",
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "/metrics answers GET and HEAD\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(response);
    }
    let accept = request
        .headers()
        .get(ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::from_accept(accept);
    let mut response = Response::new(Full::new(board.text(format)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(response)
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
