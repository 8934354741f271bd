//! A small key-value service written the way tokio services usually are, to hold the
//! probe to its promise on code shaped like real code: it installs its own
//! `tracing_subscriber` with an `EnvFilter` (and propagates a failure to do so with `?`),
//! returns `Result` from `main`, loads a snapshot with `spawn_blocking`, runs a server
//! that spawns a task per connection into a `JoinSet` and a background purge task, bounds
//! its calls with `select!` and timeouts, survives a panicking job through its
//! `JoinHandle`, and shuts down gracefully on Ctrl-C (or when its scripted clients are
//! done) by cancelling a `CancellationToken`.
//!
//! The same code runs as `service` (`#[taskscope::main]`), `service_layer` (the probe's
//! layer in the app's own subscriber, the tracing route) and `service_plain` (plain
//! `#[tokio::main]`, no probe): their output must be the same.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt};

/// What `main` returns on failure.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

type Store = Arc<Mutex<HashMap<String, String>>>;

/// The service's logging: `RUST_LOG` (default `info`) to stderr, plus any extra layer (the
/// probe's, for `service_layer`). Fails, as real services do, when a subscriber is already
/// installed.
pub fn set_up_logging<L>(extra: Option<L>) -> Result<(), Error>
where
    L: Layer<Registry> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info"))?;
    let output = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    tracing_subscriber::registry()
        .with(extra)
        .with(output)
        .try_init()?;
    Ok(())
}

/// How many scripted clients `SERVICE_CLIENTS` asks for (none: serve until Ctrl-C).
pub fn clients_from_env() -> Result<Option<usize>, Error> {
    Ok(std::env::var("SERVICE_CLIENTS")
        .ok()
        .map(|n| n.parse())
        .transpose()?)
}

/// Runs the service until Ctrl-C, or until `clients` scripted clients (if any) have each
/// made their requests.
pub async fn run(clients: Option<usize>) -> Result<(), Error> {
    let store = Store::default();
    let loaded = tokio::task::spawn_blocking(load_snapshot).await?;
    store.lock().unwrap().extend(loaded);
    info!(keys = store.lock().unwrap().len(), "snapshot loaded");

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    info!("listening");
    // The one line a supervisor (or a test) reads to find the service.
    println!("listening on {address}");

    let shutdown = CancellationToken::new();
    let purge = tokio::spawn(purge_expired(store.clone(), shutdown.clone()));
    let server = tokio::spawn(serve(listener, store.clone(), shutdown.clone()));

    let migration = tokio::spawn(async { migrate_schema(3) });
    if let Err(e) = migration.await
        && e.is_panic()
    {
        warn!("schema migration panicked; running on the old schema");
    }

    let scripted = async {
        match clients {
            Some(count) => scripted_clients(address, count).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        signal = tokio::signal::ctrl_c() => {
            signal?;
            info!("ctrl-c received, shutting down");
        }
        result = scripted => {
            result?;
            info!("scripted clients done, shutting down");
        }
    }
    shutdown.cancel();
    server.await??;
    purge.await?;
    info!("stopped");
    Ok(())
}

/// Reading the snapshot file is blocking I/O: it belongs on the blocking pool.
fn load_snapshot() -> HashMap<String, String> {
    std::thread::sleep(Duration::from_millis(20));
    (0..3).map(|i| (format!("k{i}"), format!("v{i}"))).collect()
}

/// A job that fails by panicking, which its caller catches through the `JoinHandle`.
fn migrate_schema(version: u32) {
    if version > 2 {
        panic!("schema version {version} is not supported");
    }
}

/// Drops keys now and then, until shutdown.
async fn purge_expired(store: Store, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                store.lock().unwrap().retain(|key, _| !key.starts_with("tmp-"));
            }
        }
    }
}

/// Accepts connections until shutdown, then waits for the open ones to finish.
async fn serve(
    listener: TcpListener,
    store: Store,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                connections.spawn(handle(stream, store.clone(), shutdown.clone()));
            }
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done? {
                    warn!("connection failed: {e}");
                }
            }
        }
    }
    while let Some(done) = connections.join_next().await {
        done??;
    }
    Ok(())
}

/// One connection: `GET key` / `SET key value` lines, until the client leaves or the
/// service shuts down.
async fn handle(stream: TcpStream, store: Store, shutdown: CancellationToken) -> Result<(), Error> {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    loop {
        let line = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            line = lines.next_line() => line?,
        };
        let Some(line) = line else { return Ok(()) };
        let mut words = line.split_whitespace();
        let reply = match (words.next(), words.next(), words.next()) {
            (Some("GET"), Some(key), None) => store
                .lock()
                .unwrap()
                .get(key)
                .cloned()
                .unwrap_or_else(|| "-".into()),
            (Some("SET"), Some(key), Some(value)) => {
                store.lock().unwrap().insert(key.into(), value.into());
                "OK".into()
            }
            _ => "ERR".into(),
        };
        debug!(request = %line, %reply, "served");
        writer.write_all(format!("{reply}\n").as_bytes()).await?;
    }
}

/// `count` clients, one after the other, each setting and reading a key, with a timeout
/// on every exchange.
async fn scripted_clients(address: std::net::SocketAddr, count: usize) -> Result<(), Error> {
    for client in 0..count {
        let stream = TcpStream::connect(address).await?;
        let (reader, mut writer) = stream.into_split();
        let mut replies = BufReader::new(reader).lines();
        for request in [format!("SET c{client} {client}"), format!("GET c{client}")] {
            writer.write_all(format!("{request}\n").as_bytes()).await?;
            let reply = tokio::time::timeout(Duration::from_secs(10), replies.next_line())
                .await??
                .ok_or("the service closed the connection")?;
            if reply == "ERR" {
                return Err(format!("{request}: {reply}").into());
            }
        }
    }
    info!(clients = count, "clients served");
    Ok(())
}
