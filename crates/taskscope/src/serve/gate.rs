//! Every call to the probe passes the gate: the token is checked (`auth.rs`), a call that
//! passes proves its connection (which then keeps its place, `connections.rs`), `Snapshot`
//! answers in flight are held to a few, and every refusal is answered only after
//! [`REFUSAL_DELAY`].
//!
//! A `Snapshot` answer is a page of up to 1 MiB that stays in the app's memory until the
//! client reads it: a client that asks on many streams and never reads piled pages up
//! (24 to 510 MiB in 25 s). A slot is taken when the call arrives and given back when its
//! answer has been sent, or dropped with its stream.
//!
//! A refusal answered at once invites a loop: a client retrying refused calls as fast as
//! it could kept the probe's thread at 57% of a core (debug build). Delayed, a refused
//! stream costs a timer, and each stream (at most 8 per connection, 32 connections) can
//! be refused at most once a second.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prost::bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::codegen::{Future, Service};
use tonic::server::NamedService;

use crate::base::auth::Token;
use crate::serve::connections::Admitted;

/// Snapshot answers held at once, by all clients together.
pub(crate) const MAX_SNAPSHOTS_IN_FLIGHT: usize = 4;
/// How long a refused call waits for its answer (and a `Snapshot` call for a slot).
pub(crate) const REFUSAL_DELAY: Duration = Duration::from_secs(1);
const SNAPSHOT_PATH: &str = "/taskscope.v1.Probe/Snapshot";

/// The probe's service behind its gate.
#[derive(Clone)]
pub(crate) struct Gate<S> {
    inner: S,
    token: Token,
    slots: Arc<Semaphore>,
}

impl<S> Gate<S> {
    pub(crate) fn new(inner: S, token: Token) -> Self {
        Self {
            inner,
            token,
            slots: Arc::new(Semaphore::new(MAX_SNAPSHOTS_IN_FLIGHT)),
        }
    }
}

/// `status`, after the refusal delay.
pub(crate) async fn refuse<T>(status: Status) -> Result<T, Status> {
    tokio::time::sleep(REFUSAL_DELAY).await;
    Err(status)
}

impl<S: NamedService> NamedService for Gate<S> {
    const NAME: &'static str = S::NAME;
}

type Answer = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl<S> Service<http::Request<Body>> for Gate<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Answer {
        if let Err(status) = self.token.check(request.headers()) {
            return refused(status);
        }
        // Past the token: the connection keeps its place (`connections.rs`).
        if let Some(admitted) = request.extensions().get::<Admitted>() {
            admitted.prove();
        }
        if request.uri().path() != SNAPSHOT_PATH {
            return Box::pin(self.inner.call(request));
        }
        let slots = self.slots.clone();
        // The call to the inner service is made now (it must follow `poll_ready`), and its
        // future only awaited once a slot is free.
        let answer = self.inner.call(request);
        Box::pin(async move {
            let Ok(Ok(slot)) = tokio::time::timeout(REFUSAL_DELAY, slots.acquire_owned()).await
            else {
                return Ok(Status::resource_exhausted(format!(
                    "{MAX_SNAPSHOTS_IN_FLIGHT} Snapshot answers are already waiting to be \
                     read; read them first"
                ))
                .into_http());
            };
            let response = answer.await?;
            Ok(response.map(|body| Body::new(Held { body, _slot: slot })))
        })
    }
}

fn refused(status: Status) -> Answer {
    Box::pin(async move {
        let status = refuse::<()>(status).await.unwrap_err();
        Ok(status.into_http())
    })
}

/// A response body holding its slot until it is dropped.
struct Held {
    body: Body,
    _slot: OwnedSemaphorePermit,
}

impl http_body::Body for Held {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
