//! A client that watches a child's probe for the whole run, on a thread of the harness.
//!
//! It plays two parts: in `taskscope+watch` it is the load a real dashboard puts on the
//! probe (it decodes and counts every update), and in `stall-latency` it is the stopwatch:
//! it notes the wall clock at which each stall's first event arrives.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use taskscope_api::v1;
use taskscope_api::v1::probe_client::ProbeClient;
use tonic::transport::Endpoint;

/// Large snapshots are split below this by the probe; accept anything it may send.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// The token the harness gives every child's probe (`TASKSCOPE_TOKEN`) and presents to
/// it: drawn once per run, so that no other local user's client can watch the children.
pub(crate) fn token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        let mut bytes = [0u8; 16];
        let drawn = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
        if drawn.is_err() {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            bytes = (nanos ^ u128::from(std::process::id())).to_le_bytes();
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// What the client saw.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct WatchSummary {
    pub(crate) updates: u64,
    pub(crate) tasks_spawned: u64,
    pub(crate) tasks_ended: u64,
    /// Short-lived tasks the probe counted by spawn site instead of one by one (each
    /// site's latest tally, added up).
    pub(crate) tasks_folded: u64,
    /// The probe's drop counters, as last reported.
    pub(crate) drops: Drops,
    /// Each stall's first event, in the order they arrived.
    pub(crate) stalls: Vec<StallSeen>,
    /// Why watching failed, if it did.
    pub(crate) error: Option<String>,
    /// When the probe closed the stream, if it did before the harness stopped watching
    /// (Unix ns). The child exiting closes it too; the harness compares this with the
    /// moment the workload finished to tell a disconnected client from a finished run.
    pub(crate) stream_closed_unix_ns: Option<u64>,
    /// The probe closed the stream while the workload was still running: the client was
    /// cut off (a full watcher buffer) and missed the rest of the run.
    pub(crate) cut_off: bool,
}

/// `v1::Drops`, in a form the report can serialize.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Drops {
    pub(crate) spawn_events_delayed: u64,
    pub(crate) tasks_lost: u64,
    pub(crate) stall_events: u64,
    pub(crate) recording_updates: u64,
    pub(crate) ended_tasks_evicted: u64,
}

impl Drops {
    pub(crate) fn total_lost(&self) -> u64 {
        self.tasks_lost + self.stall_events + self.recording_updates
    }
}

/// The first event the client received about one stall.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StallSeen {
    pub(crate) stall_id: u64,
    /// Whether that first event was STARTED (the poll still running), as it should be.
    pub(crate) started: bool,
    /// Wall clock when it arrived.
    pub(crate) arrived_unix_ns: u64,
    /// Wall clock of the poll's start, by the probe's clock.
    pub(crate) poll_started_unix_ns: u64,
}

/// A running watcher.
pub(crate) struct Watcher {
    stop: Arc<AtomicBool>,
    attached: mpsc::Receiver<()>,
    thread: JoinHandle<WatchSummary>,
}

impl Watcher {
    /// Starts connecting to `address` (retrying until the probe listens).
    pub(crate) fn start(address: SocketAddr) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (attached_tx, attached) = mpsc::channel();
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("bench-watcher".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        return WatchSummary {
                            error: Some(format!("cannot start the watcher's runtime: {e}")),
                            ..Default::default()
                        };
                    }
                };
                runtime.block_on(watch(address, thread_stop, attached_tx))
            })?;
        Ok(Self {
            stop,
            attached,
            thread,
        })
    }

    /// Waits until the client has received the probe's first update.
    pub(crate) fn wait_attached(&self, timeout: Duration) -> bool {
        self.attached.recv_timeout(timeout).is_ok()
    }

    /// Stops watching (the child has exited) and returns what was seen.
    pub(crate) fn finish(self) -> WatchSummary {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_else(|_| WatchSummary {
            error: Some("the watcher panicked".into()),
            ..Default::default()
        })
    }
}

async fn watch(
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    attached: mpsc::Sender<()>,
) -> WatchSummary {
    let mut summary = WatchSummary::default();
    let endpoint = match Endpoint::from_shared(format!("http://{address}")) {
        Ok(endpoint) => endpoint.connect_timeout(Duration::from_secs(1)),
        Err(e) => {
            summary.error = Some(format!("bad address {address}: {e}"));
            return summary;
        }
    };
    let channel = loop {
        if stop.load(Ordering::Relaxed) {
            summary.error = Some(format!("never connected to the probe at {address}"));
            return summary;
        }
        match endpoint.connect().await {
            Ok(channel) => break channel,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let bearer = taskscope_api::token::bearer(token())
        .parse::<tonic::metadata::AsciiMetadataValue>()
        .expect("a hex token is a valid header");
    let with_token = move |mut request: tonic::Request<()>| {
        let header = taskscope_api::token::HEADER;
        request.metadata_mut().insert(header, bearer.clone());
        Ok(request)
    };
    let mut client =
        ProbeClient::with_interceptor(channel, with_token).max_decoding_message_size(MAX_MESSAGE);
    let mut stream = match client.watch(v1::WatchRequest {}).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            summary.error = Some(format!("the probe refused to stream: {}", status.message()));
            return summary;
        }
    };
    let mut start_unix_ns = 0i64;
    let mut seen_stalls = HashSet::new();
    let mut folded_by_site = std::collections::HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let message = match tokio::time::timeout(Duration::from_millis(50), stream.message()).await
        {
            Err(_elapsed) => continue,
            Ok(Ok(Some(update))) => update,
            Ok(Ok(None)) | Ok(Err(_)) => {
                summary.stream_closed_unix_ns = Some(unix_now_ns());
                break;
            }
        };
        let arrived_unix_ns = unix_now_ns();
        if summary.updates == 0 {
            let _ = attached.send(());
        }
        summary.updates += 1;
        if let Some(process) = &message.process {
            start_unix_ns = process.start_unix_ns;
        }
        summary.tasks_spawned += message.spawned.len() as u64;
        summary.tasks_ended += message.ended.len() as u64;
        for folded in &message.folded {
            // Each is the site's whole tally so far.
            let site = folded
                .location
                .as_ref()
                .map(|l| (l.file.clone(), l.line, l.column));
            folded_by_site.insert(site, folded.tasks);
        }
        summary.tasks_folded = folded_by_site.values().sum();
        if let Some(drops) = message.drops {
            summary.drops = Drops {
                spawn_events_delayed: drops.spawn_events_delayed,
                tasks_lost: drops.tasks_lost,
                stall_events: drops.stall_events,
                recording_updates: drops.recording_updates,
                ended_tasks_evicted: drops.ended_tasks_evicted,
            };
        }
        for stall in &message.stalls {
            if seen_stalls.insert(stall.stall_id) {
                summary.stalls.push(StallSeen {
                    stall_id: stall.stall_id,
                    started: stall.phase == v1::StallPhase::Started as i32,
                    arrived_unix_ns,
                    poll_started_unix_ns: (start_unix_ns + stall.poll_started_ns as i64) as u64,
                });
            }
        }
    }
    summary
}

/// Wall clock now, in Unix nanoseconds.
pub(crate) fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
