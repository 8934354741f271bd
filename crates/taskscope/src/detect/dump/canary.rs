//! A one-off check, before the process's first dump, that tokio's dump leaves a child of
//! a sub-executor runnable.
//!
//! A dump re-polls a woken task in a tracing mode where each tokio future it reaches
//! returns `Pending` at once, before it registers a waker. A child driven by a
//! sub-executor (`FuturesUnordered`, `join_all`, `select_all`) is polled again only when
//! its own waker fires, so tokio must wake that waker itself after the trace; some tokio
//! releases do not, and the child is never polled again: its parent waits for ever.
//! Whether the tokio this app was built with does is found out by doing it once, in a
//! throw-away runtime on a thread of the probe's, rather than read from a list of
//! versions (the behaviour can come and go with patch releases): a parent drives one
//! child, parked on a channel, through a minimal sub-executor; the child is woken, the
//! runtime dumped while the parent is queued, and the parent must then finish.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// How long the parent gets to finish after the dump: it needs a few polls.
const GRACE: Duration = Duration::from_secs(2);

/// What the check found, once per process.
static VERDICT: OnceLock<Result<(), &'static str>> = OnceLock::new();

const STRANDS: &str = "declined: tokio's dump, in the tokio this app was built with, strands \
     tasks driven through FuturesUnordered, join_all or select_all (a child woken as the dump \
     comes is never polled again), as a check in a throw-away runtime showed; await chains \
     come back with a tokio release whose dump passes that check";

/// `Ok` when tokio's dump leaves sub-executors' children runnable, or why dumps are
/// declined. The first call runs the check (a few milliseconds, on a thread of its own).
pub(crate) fn verdict() -> Result<(), &'static str> {
    *VERDICT.get_or_init(|| {
        let (sender, result) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("taskscope-canary".into())
            .spawn(move || {
                crate::base::quiet::quiet_forever();
                let _ = sender.send(children_survive());
            });
        match spawned.map(|_| result.recv_timeout(GRACE * 2)) {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(STRANDS),
            _ => Err("declined: the check that tokio's dump is safe for this app did not run"),
        }
    })
}

/// The check itself, on a current-thread runtime of its own.
fn children_survive() -> bool {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return false;
    };
    runtime.block_on(async {
        let (wake_child, parked) = tokio::sync::oneshot::channel::<()>();
        let parent = tokio::spawn(SubExecutor::new(async move {
            let _ = parked.await;
        }));
        // The parent runs once: its child parks on the channel.
        tokio::task::yield_now().await;
        // The child's waker wakes the parent, which is now queued, not yet polled.
        let _ = wake_child.send(());
        let _ = tokio::runtime::Handle::current().dump().await;
        tokio::time::timeout(GRACE, parent).await.is_ok()
    })
}

/// The smallest sub-executor: one child, polled only when its own waker fired, as
/// `FuturesUnordered` does.
struct SubExecutor<F> {
    child: Pin<Box<F>>,
    waker: Arc<ChildWaker>,
}

struct ChildWaker {
    woken: AtomicBool,
    parent: Mutex<Option<Waker>>,
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let parent = self
            .parent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(parent) = parent {
            parent.wake();
        }
    }
}

impl<F: Future<Output = ()>> SubExecutor<F> {
    fn new(child: F) -> Self {
        Self {
            child: Box::pin(child),
            waker: Arc::new(ChildWaker {
                woken: AtomicBool::new(true),
                parent: Mutex::new(None),
            }),
        }
    }
}

impl<F: Future<Output = ()>> Future for SubExecutor<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *self.waker.parent.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        if !self.waker.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = Waker::from(self.waker.clone());
        self.child.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokio this workspace locks takes dumps that leave children runnable.
    #[test]
    fn the_locked_tokio_passes_the_check() {
        assert!(children_survive());
        assert_eq!(verdict(), Ok(()));
    }
}
