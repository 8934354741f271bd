//! Awaiting another task's `JoinHandle`, seen: the one wait-for edge tokio reports nothing
//! about.
//!
//! tokio's `JoinHandle` has no resource span, and the handle an `.await` is on cannot be
//! read back from a task dump, so a task parked on another task's end is invisible as an
//! edge. [`join`] wraps the handle: each poll that leaves the awaiting task waiting records
//! in the task's own cell (`tasks/waits.rs`) whose end it waits for, by
//! [`JoinHandle::id`]. It works on both routes, costs a few stores per pending poll, and
//! changes nothing else: the output, cancellation and `abort` are the handle's.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::{JoinError, JoinHandle};

use crate::base::clock;
use crate::observe::resources;
use crate::tasks::threads;
use crate::tasks::waits::WaitTarget;

/// Awaits `handle` like `handle.await`, and tells taskscope which task the awaiting task
/// is waiting for, so that two tasks joined on each other are reported as a deadlock.
///
/// ```no_run
/// # async fn run() {
/// let worker = tokio::spawn(async { 42 });
/// let answer = taskscope::join(worker).await.unwrap();
/// # }
/// ```
pub fn join<T>(handle: JoinHandle<T>) -> Joined<T> {
    let task = task_number(&handle);
    Joined { handle, task }
}

/// The future [`join`] returns: the handle's output.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Joined<T> {
    handle: JoinHandle<T>,
    /// The joined task's id, as the probe numbers tasks (tokio's task id).
    task: u64,
}

impl<T> Joined<T> {
    /// The handle, to `abort` it or ask whether it is finished.
    pub fn handle(&self) -> &JoinHandle<T> {
        &self.handle
    }
}

impl<T> Future for Joined<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = Pin::new(&mut self.handle).poll(cx);
        if polled.is_pending() && self.task != 0 {
            let me = threads::with_local(|local| local.current_task()).unwrap_or(0);
            resources::wait_on(me, WaitTarget::Join(self.task), clock::now_ns());
        }
        polled
    }
}

/// tokio's id of the handle's task as a number: tokio shows it only through `Display`.
fn task_number<T>(handle: &JoinHandle<T>) -> u64 {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(20);
    let _ = write!(text, "{}", handle.id());
    text.parse().unwrap_or(0)
}
