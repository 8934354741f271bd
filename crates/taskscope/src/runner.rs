//! The probe's own thread and runtime: publishes updates to watchers and the recorder,
//! serves gRPC, and answers the final flush at process exit.
//!
//! It is deliberately separate from the app's runtimes: a stalled app runtime cannot stall
//! the probe (which is exactly when it must report), and a slow client or disk can slow
//! only the probe.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use taskscope_api::v1;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::aggregator::Aggregator;
use crate::recorder::Recorder;
use crate::server::Listener;
use crate::shared::Shared;
use crate::snapshots::Snapshots;
use crate::watchers::{Encoded, Feed, Watcher};

/// How often queued spawns are taken in between publishes.
const DRAIN_INTERVAL: Duration = Duration::from_millis(10);
/// At exit, how long watchers' connections get to take what is queued for them.
const EXIT_DRAIN: Duration = Duration::from_millis(500);

/// Requests to the probe's thread.
pub(crate) enum Command {
    /// A feed, or why not (refused beyond the limit on watchers).
    Watch(oneshot::Sender<Result<Feed, Status>>),
    Snapshot {
        page: u64,
        reply: oneshot::Sender<Result<v1::SnapshotPage, Status>>,
    },
    /// Publish everything now, as the last update (the process is exiting), and report
    /// when the recording has it.
    FinalFlush(std::sync::mpsc::Sender<()>),
}

/// Starts the probe's thread (and the watchdog). Returns the command channel.
pub(crate) fn start(
    shared: Arc<Shared>,
    listener: Option<Listener>,
) -> std::io::Result<mpsc::UnboundedSender<Command>> {
    // Before anything publishes: the first update says whether stacks can be captured.
    let capture = crate::stall_stack::Capture::new(&shared);
    let (commands, command_receiver) = mpsc::unbounded_channel();
    let events = shared
        .event_receiver
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .expect("a probe is started once");
    let server_commands = commands.clone();
    let thread_shared = shared.clone();
    // Before the app goes on: a client started right after must find the token file.
    let token = listener
        .as_ref()
        .map(|_| crate::auth::token_for(&shared.config));
    let limits = shared.config.limits;
    std::thread::Builder::new()
        .name("taskscope-probe".into())
        .spawn(move || {
            crate::quiet::quiet_forever();
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("taskscope-probe")
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    crate::diag::warn(&format!("cannot start the probe's runtime: {e}"));
                    return;
                }
            };
            let aggregator = Aggregator::new(thread_shared.clone(), events);
            runtime.block_on(async move {
                if let (Some(listener), Some(token)) = (listener, token) {
                    tokio::spawn(crate::server::serve(
                        listener,
                        server_commands,
                        limits,
                        token,
                    ));
                }
                run(thread_shared, aggregator, command_receiver).await;
            });
        })?;
    crate::watchdog::start(shared, capture, Arc::new(AtomicBool::new(false)))?;
    Ok(commands)
}

/// The longest process exit waits for stack samples still being symbolized.
const SAMPLES_WAIT: Duration = Duration::from_millis(1500);

fn wait_for_samples(shared: &Shared) {
    let deadline = std::time::Instant::now() + SAMPLES_WAIT;
    while shared
        .samples_in_flight
        .load(std::sync::atomic::Ordering::Acquire)
        > 0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// After a client leaves, what it made the app allocate goes back to the allocator's free
/// lists, not to the system: glibc keeps freed memory of the probe's thread in its arena,
/// and ten unread watchers' 640 MB stayed resident after they left. A trim gives it back;
/// it walks the heap, so it is done at most this often.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// Gives freed memory back to the system, where the allocator can.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

struct Publisher {
    watchers: Vec<Watcher>,
    recorder: Option<Recorder>,
    /// Memory was freed that a trim could give back.
    trim_due: bool,
    last_trim: Instant,
}

impl Publisher {
    /// Drops the watchers whose clients have gone.
    fn prune(&mut self) {
        let before = self.watchers.len();
        self.watchers.retain(|watcher| !watcher.is_closed());
        self.trim_due |= self.watchers.len() < before;
    }

    /// Trims if memory was freed and the last trim is long enough ago.
    fn trim_if_due(&mut self) {
        if self.trim_due && self.last_trim.elapsed() >= TRIM_INTERVAL {
            self.trim_due = false;
            self.last_trim = Instant::now();
            release_memory();
        }
    }

    /// At exit: lets the watchers' connections take what is queued for them (the last
    /// stall's end, the exit itself), for at most [`EXIT_DRAIN`], so that a client
    /// watching a process that ends right after a stall still hears how it ended.
    async fn drain_watchers(&self) {
        if self.watchers.is_empty() {
            return;
        }
        let deadline = tokio::time::Instant::now() + EXIT_DRAIN;
        while !self.watchers.iter().all(Watcher::is_drained)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Taken from the queue is not yet written to the socket: one more turn for the
        // connections to flush.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    fn publish(&mut self, aggregator: &mut Aggregator, updates: Vec<v1::Update>) {
        if !updates.is_empty() && !self.watchers.is_empty() {
            // Encoded once, shared by every watcher's queue.
            let encoded: Vec<Encoded> = updates.iter().map(Encoded::new).collect();
            let before = self.watchers.len();
            self.watchers
                .retain_mut(|watcher| encoded.iter().all(|update| watcher.offer(update)));
            self.trim_due |= self.watchers.len() < before;
        }
        self.prune();
        aggregator.set_has_consumers(!self.watchers.is_empty() || self.recorder.is_some());
        if updates.is_empty() {
            return;
        }
        if let Some(recorder) = self.recorder.as_mut() {
            if recorder.needs_snapshot {
                recorder.needs_snapshot = false;
                recorder.write(aggregator.snapshot());
            }
            recorder.write(updates);
        }
    }
}

async fn run(
    shared: Arc<Shared>,
    mut aggregator: Aggregator,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut publisher = Publisher {
        watchers: Vec::new(),
        recorder: None,
        trim_due: false,
        last_trim: Instant::now(),
    };
    let mut snapshots = Snapshots::new();
    let max_watchers = shared.config.limits.max_watchers;
    if let Some(path) = &shared.config.record {
        let path = crate::recorder::resolve_path(path, aggregator.program());
        match Recorder::start(path.clone(), shared.clone()) {
            Ok(mut recorder) => {
                recorder.write(aggregator.snapshot());
                publisher.recorder = Some(recorder);
                aggregator.set_has_consumers(true);
            }
            Err(e) => crate::diag::warn(&format!("cannot record to {}: {e}", path.display())),
        }
    }
    let mut publish = tokio::time::interval(shared.config.publish_interval);
    publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut drain = tokio::time::interval(DRAIN_INTERVAL);
    drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = publish.tick() => {
                let updates = aggregator.delta();
                publisher.publish(&mut aggregator, updates);
            }
            _ = shared.urgent.notified() => {
                let updates = aggregator.delta();
                publisher.publish(&mut aggregator, updates);
            }
            _ = drain.tick() => {
                crate::clock::recalibrate();
                aggregator.catch_up();
                publisher.trim_due |= snapshots.expire();
                publisher.trim_if_due();
            }
            command = commands.recv() => match command {
                None => break,
                Some(Command::Watch(reply)) => {
                    let _ = reply.send(watch(&mut publisher, &mut aggregator, max_watchers));
                }
                Some(Command::Snapshot { page, reply }) => {
                    let _ = reply.send(snapshots.page(&mut aggregator, page));
                }
                Some(Command::FinalFlush(done)) => {
                    // Stacks of a stall that just happened are worth a short wait.
                    let in_flight = shared.clone();
                    let _ = tokio::task::spawn_blocking(move || wait_for_samples(&in_flight)).await;
                    let mut updates = aggregator.delta();
                    if updates.is_empty() {
                        updates.push(v1::Update { now_ns: crate::clock::now_ns(), ..Default::default() });
                    }
                    if let Some(last) = updates.last_mut() {
                        last.process_exited = true;
                    }
                    publisher.publish(&mut aggregator, updates);
                    publisher.drain_watchers().await;
                    match publisher.recorder.as_ref().and_then(Recorder::flush) {
                        Some(written) => {
                            tokio::task::spawn_blocking(move || {
                                let _ = written.recv_timeout(Duration::from_secs(2));
                                let _ = done.send(());
                            });
                        }
                        None => {
                            let _ = done.send(());
                        }
                    }
                }
            }
        }
    }
}

/// A new watcher's feed, or the reason there is none.
fn watch(
    publisher: &mut Publisher,
    aggregator: &mut Aggregator,
    max_watchers: usize,
) -> Result<Feed, Status> {
    publisher.prune();
    if publisher.watchers.len() >= max_watchers {
        return Err(Status::resource_exhausted(format!(
            "this probe already streams to {max_watchers} clients, its limit; close one, or \
             raise TASKSCOPE_MAX_WATCHERS in the app's environment"
        )));
    }
    // Existing watchers get what is pending first, so the new watcher's snapshot and
    // everyone's next delta line up.
    let updates = aggregator.delta();
    publisher.publish(aggregator, updates);
    let (watcher, feed) = crate::watchers::open(aggregator.snapshot());
    if let Some(watcher) = watcher {
        publisher.watchers.push(watcher);
        aggregator.set_has_consumers(true);
    }
    Ok(feed)
}
