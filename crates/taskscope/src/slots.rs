//! Snapshot responses in flight, held to a few at once. A `Snapshot` answer is a page of
//! up to 1 MiB that stays in the app's memory until the client reads it: a client that
//! asks on many streams and never reads would otherwise pile up pages (the rate limit in
//! `snapshots.rs` only slows the pile down). A slot is taken when the call arrives and
//! given back when its response has been sent, or dropped with its stream.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use prost::bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::codegen::{Future, Service};
use tonic::server::NamedService;

/// Snapshot responses held at once, by all clients together.
pub(crate) const MAX_SNAPSHOTS_IN_FLIGHT: usize = 4;
const SNAPSHOT_PATH: &str = "/taskscope.v1.Probe/Snapshot";

/// The probe's service, with `Snapshot` calls beyond the slots refused.
#[derive(Clone)]
pub(crate) struct SnapshotSlots<S> {
    inner: S,
    slots: Arc<Semaphore>,
}

impl<S> SnapshotSlots<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(MAX_SNAPSHOTS_IN_FLIGHT)),
        }
    }
}

impl<S: NamedService> NamedService for SnapshotSlots<S> {
    const NAME: &'static str = S::NAME;
}

type Answer = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl<S> Service<http::Request<Body>> for SnapshotSlots<S>
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
        if request.uri().path() != SNAPSHOT_PATH {
            return Box::pin(self.inner.call(request));
        }
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            let status = Status::resource_exhausted(format!(
                "{MAX_SNAPSHOTS_IN_FLIGHT} Snapshot answers are already waiting to be read; \
                 read them first"
            ));
            return Box::pin(std::future::ready(Ok(status.into_http())));
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| Body::new(Held { body, _slot: slot })))
        })
    }
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
