//! Counting polls. tokio's `worker_poll_count` misses most polls of tasks that wake each
//! other (it counts scheduler passes, not the tasks run from the LIFO slot), so per-poll
//! costs are derived from an exact count kept by the tasks themselves.
//!
//! Each task counts in a plain field of its own future and adds the total to a global
//! counter once, when the future is dropped: one atomic operation per task rather than a
//! contended one per poll, which would distort the very cost being measured.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

static POLLS: AtomicU64 = AtomicU64::new(0);

/// Polls of every [`Counted`] future dropped so far.
pub(crate) fn polls() -> u64 {
    POLLS.load(Ordering::Relaxed)
}

/// `future`, counting its polls.
pub(crate) fn counted<F: Future>(future: F) -> Counted<F> {
    Counted {
        inner: future,
        polls: 0,
    }
}

/// A future that counts how often it is polled.
pub(crate) struct Counted<F> {
    inner: F,
    polls: u64,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of `self`, and
        // `Counted` has no `Unpin` impl of its own that would allow moving it.
        let this = unsafe { self.get_unchecked_mut() };
        this.polls += 1;
        // SAFETY: see above; `this` came from a pinned reference.
        unsafe { Pin::new_unchecked(&mut this.inner) }.poll(cx)
    }
}

impl<F> Drop for Counted<F> {
    fn drop(&mut self) {
        POLLS.fetch_add(self.polls, Ordering::Relaxed);
    }
}
