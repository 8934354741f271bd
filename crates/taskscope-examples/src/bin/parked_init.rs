//! Tasks left parked when a `#[tokio::main]` program set up with `taskscope::init()`
//! returns, each at a kind of wait whose await chain differs: what `check` reports under
//! each leak, where it waits or why it cannot say, on the route that also tracks wakers.
//!
//! * `heartbeat`: a forgotten `interval` loop, parked at its `tick().await`;
//! * `accept_loop`: a server's accept loop on `TcpListener::accept`, which tokio's task
//!   dumps do not instrument (the dump reaches the task and finds no leaf);
//! * `poll_accept_loop`: the same through `poll_accept`, which they do (the leaf is the
//!   listener's readiness, `Registration::poll_ready`);
//! * `peek_timer`: a future that polls a timer with a waker of its own instead of its
//!   task's, so nothing can ever wake the task: a lost waker, parked at that poll;
//! * `join_set`: a `JoinSet`'s `join_next`, which polls only children that woke, so the
//!   dump finds no leaf in it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;

async fn heartbeat() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await; // AWAIT: heartbeat
    }
}

async fn accept_loop(listener: TcpListener) {
    while let Ok((socket, _)) = listener.accept().await {
        // AWAIT: accept_loop
        drop(socket);
    }
}

async fn poll_accept_loop(listener: TcpListener) {
    while let Ok((socket, _)) = std::future::poll_fn(|cx| listener.poll_accept(cx)).await {
        // AWAIT: poll_accept_loop
        drop(socket);
    }
}

/// Looks whether a timer has fired without registering the task for its wake-up: the
/// timer keeps a waker that wakes nothing.
struct PeekTimer(Pin<Box<tokio::time::Sleep>>);

impl Future for PeekTimer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        // Bug: should poll with `_cx`, whose waker wakes this task.
        let mut own = Context::from_waker(Waker::noop());
        self.0.as_mut().poll(&mut own) // AWAIT: peek_timer
    }
}

async fn peek_timer() {
    PeekTimer(Box::pin(tokio::time::sleep(Duration::from_secs(3600)))).await;
}

async fn join_set(go: Arc<Notify>) {
    let mut set = tokio::task::JoinSet::new();
    set.spawn(async move { go.notified().await });
    set.join_next().await; // AWAIT: join_set
}

#[track_caller]
fn spawn<F>(name: &str, future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    tokio::task::Builder::new()
        .name(name)
        .spawn(future)
        .expect("spawned");
}

#[tokio::main]
async fn main() {
    taskscope::init();
    spawn("heartbeat", heartbeat()); // FAULT: alive_at_shutdown
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    spawn("accept_loop", accept_loop(listener));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    spawn("poll_accept_loop", poll_accept_loop(listener));
    spawn("peek_timer", peek_timer());
    let go = Arc::new(Notify::new());
    spawn("join_set", join_set(go.clone()));
    // Long enough for the tasks to stay idle past `taskscope check`'s idle dumps.
    let wait_ms = std::env::var("PARKED_INIT_WAIT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(1500);
    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    std::mem::forget(go);
    println!("parked_init: main returns with every task still parked");
}
