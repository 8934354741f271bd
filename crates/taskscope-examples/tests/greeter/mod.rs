//! A small line-protocol server, written the usual way: `run` accepts connections until
//! the process ends, spawning a handler per connection and a background task that purges
//! expired sessions. Nothing here can stop it: a test that starts one and returns leaks
//! it, its handlers and its purge task.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How often a connection is told the server is still there.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// How often expired sessions are dropped.
const PURGE_EVERY: Duration = Duration::from_secs(60);

type Sessions = Arc<Mutex<HashMap<SocketAddr, Instant>>>;

pub(crate) struct Greeter {
    listener: TcpListener,
    sessions: Sessions,
    /// Loads its settings with blocking file I/O, as some servers still do.
    slow_start: bool,
}

impl Greeter {
    pub(crate) async fn bind(slow_start: bool) -> (Self, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let greeter = Self {
            listener,
            sessions: Arc::default(),
            slow_start,
        };
        (greeter, address)
    }

    /// Serves until the process ends.
    pub(crate) async fn run(self) {
        if self.slow_start {
            load_settings_blocking();
        }
        tokio::spawn(purge_expired(self.sessions.clone())); // SITE: purge
        loop {
            let Ok((stream, peer)) = self.listener.accept().await else {
                continue;
            };
            self.sessions.lock().unwrap().insert(peer, Instant::now());
            tokio::spawn(handle(stream)); // SITE: handler
        }
    }
}

fn load_settings_blocking() {
    // Stands for a synchronous read of a slow disk or a remote file system.
    std::thread::sleep(Duration::from_millis(300));
}

/// Greets the client, then sends it a heartbeat now and then.
async fn handle(stream: TcpStream) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    if BufReader::new(read).read_line(&mut line).await.is_err() {
        return;
    }
    let reply = format!("hello, {}\n", line.trim());
    if write.write_all(reply.as_bytes()).await.is_err() {
        return;
    }
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        if write.write_all(b"still here\n").await.is_err() {
            return;
        }
    }
}

async fn purge_expired(sessions: Sessions) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    loop {
        every.tick().await;
        let now = Instant::now();
        sessions
            .lock()
            .unwrap()
            .retain(|_, since| now.duration_since(*since) < PURGE_EVERY);
    }
}

/// Connects, says `name`, and returns the greeting.
pub(crate) async fn greet(address: SocketAddr, name: &str) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("{name}\n").as_bytes())
        .await
        .unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).await.unwrap();
    reply
}
