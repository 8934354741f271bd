//! A broker's shape: a synchronous `main` starts one thread per listener, and each thread
//! builds a current-thread runtime by hand and runs its accept loop in `block_on`, on a
//! real `TcpListener`. The TLS listener first loads its certificate synchronously (a
//! 400 ms blocking sleep stands in for it) inside that body: a stall that no task's poll
//! holds, seen because the body runs through `taskscope::block_on`. Each listener also
//! keeps a session-expiry task parked on its runtime, which dumps reach.
//!
//! `main` stops the listeners (a `quit` line to each) once they all accept and a line (or
//! the end) comes on stdin: at once under `taskscope check`, whose stdin is empty.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::net::TcpListener;

fn main() {
    taskscope::Builder::from_env()
        .init_with_hooks()
        .expect("the probe starts");
    let (ready, listening) = mpsc::channel();
    let serving: [(&str, Listener); 3] = [
        ("listener-tcp", serve_tcp),
        ("listener-tls", serve_tls),
        ("listener-ws", serve_websocket),
    ];
    let listeners: Vec<_> = serving
        .into_iter()
        .map(|(name, serve)| {
            let ready = ready.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || serve(ready))
                .expect("a listener thread starts")
        })
        .collect();
    let addresses: Vec<SocketAddr> = listening.iter().take(listeners.len()).collect();
    println!("hand_built_listeners: listening on {addresses:?}");
    let _ = std::io::stdin().lock().read_line(&mut String::new());
    for address in addresses {
        let mut connection = std::net::TcpStream::connect(address).expect("connects");
        connection.write_all(b"quit\n").expect("says quit");
    }
    for listener in listeners {
        listener.join().expect("a listener ends");
    }
    println!("hand_built_listeners: done");
}

/// What a listener thread runs; it says where it listens on `ready`.
type Listener = fn(mpsc::Sender<SocketAddr>);

/// A current-thread runtime with the probe's hooks, as each listener thread builds it.
fn runtime() -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    taskscope::hooks::install(&mut builder);
    builder.enable_all().build().expect("a runtime")
}

fn serve_tcp(ready: mpsc::Sender<SocketAddr>) {
    let runtime = runtime();
    taskscope::block_on(&runtime, accept_loop(ready));
}

fn serve_tls(ready: mpsc::Sender<SocketAddr>) {
    let runtime = runtime();
    taskscope::block_on(&runtime, accept_tls(ready)); // FAULT: stall
}

fn serve_websocket(ready: mpsc::Sender<SocketAddr>) {
    let runtime = runtime();
    taskscope::block_on(&runtime, accept_loop(ready));
}

/// The TLS listener's body: its identity first, then the same accept loop.
async fn accept_tls(ready: mpsc::Sender<SocketAddr>) {
    load_certificate();
    accept_loop(ready).await;
}

/// Reads the certificate and key from disk, synchronously, as TLS set-ups often do.
fn load_certificate() {
    std::thread::sleep(Duration::from_millis(400)); // BLOCKS
}

/// Accepts connections until one says `quit`; sessions expire in a task of their own.
async fn accept_loop(ready: mpsc::Sender<SocketAddr>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let expiry = tokio::spawn(expire_sessions());
    ready
        .send(listener.local_addr().expect("an address"))
        .expect("main listens");
    loop {
        let (connection, _) = listener.accept().await.expect("accepts");
        let mut lines = tokio::io::BufReader::new(connection).lines();
        if let Ok(Some(line)) = lines.next_line().await
            && line == "quit"
        {
            break;
        }
    }
    expiry.abort();
    let _ = expiry.await;
}

/// Wakes every minute to expire idle sessions: parked here between rounds.
async fn expire_sessions() {
    let mut every_minute = tokio::time::interval(Duration::from_secs(60));
    loop {
        every_minute.tick().await; // AWAIT: expire_sessions
    }
}
