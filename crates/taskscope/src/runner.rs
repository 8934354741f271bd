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
    /// Where every live task is waiting (`Dump`), or why not.
    Dump(oneshot::Sender<Result<v1::Dump, Status>>),
    /// A dump a runtime took as it shut down: symbolize it, publish it, then say `done`.
    #[cfg(taskscope_dumps)]
    ShutdownDump {
        raw: Result<crate::dump::capture::RawDump, String>,
        taken_ns: u64,
        done: std::sync::mpsc::Sender<()>,
    },
    /// A dump ready to publish; `done` hears when it was.
    #[cfg_attr(not(taskscope_dumps), allow(dead_code))]
    Dumped(v1::Dump, Option<std::sync::mpsc::Sender<()>>),
    /// Publish everything now, as the last update (the process is exiting), and report
    /// when the recording has it.
    FinalFlush(std::sync::mpsc::Sender<()>),
}

/// Starts the probe's thread (and the watchdog). Returns the command channel.
pub(crate) fn start(
    shared: Arc<Shared>,
    listener: Option<Listener>,
    metrics: Option<Listener>,
    tls: Option<crate::tls::ServerTls>,
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
    let own_commands = commands.clone();
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
            let mut aggregator = Aggregator::new(thread_shared.clone(), events);
            runtime.block_on(async move {
                if let Some(listener) = metrics {
                    aggregator.set_metrics(crate::metrics::start(&thread_shared.config, listener));
                }
                if let Some(endpoint) = &thread_shared.config.otlp_endpoint
                    && let Some(otlp) = crate::otlp::Otlp::start(endpoint, aggregator.program())
                {
                    aggregator.set_otlp(otlp);
                }
                if let (Some(listener), Some(token)) = (listener, token) {
                    tokio::spawn(crate::server::serve(
                        listener,
                        server_commands,
                        limits,
                        token,
                        tls,
                    ));
                }
                run(thread_shared, aggregator, own_commands, command_receiver).await;
            });
        })?;
    crate::watchdog::start(shared, capture, Arc::new(AtomicBool::new(false)))?;
    Ok(commands)
}

/// The longest process exit waits for stack samples and dumps still being symbolized.
const SAMPLES_WAIT: Duration = Duration::from_millis(1500);

fn wait_for_samples(shared: &Shared) {
    let deadline = std::time::Instant::now() + SAMPLES_WAIT;
    let in_flight =
        |count: &std::sync::atomic::AtomicU64| count.load(std::sync::atomic::Ordering::Acquire) > 0;
    while (in_flight(&shared.samples_in_flight) || in_flight(&shared.dumps_in_flight))
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
    own_commands: mpsc::UnboundedSender<Command>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut dumps = Dumps {
        shared: shared.clone(),
        commands: own_commands,
        #[cfg(taskscope_dumps)]
        requests: Default::default(),
        idle: IdleDumps::default(),
    };
    let mut idle_check = tokio::time::interval(IDLE_CHECK);
    idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let dump_when_idle = cfg!(taskscope_dumps) && shared.config.dumps_when_idle();
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
            _ = idle_check.tick(), if dump_when_idle => dumps.when_idle(&aggregator),
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
                Some(Command::Dump(reply)) => dumps.requested(reply),
                #[cfg(taskscope_dumps)]
                Some(Command::ShutdownDump { raw, taken_ns, done }) => {
                    dumps.at_shutdown(raw, taken_ns, done);
                }
                Some(Command::Dumped(dump, done)) => {
                    dumps.published(&dump);
                    aggregator.add_dump(dump);
                    let updates = aggregator.delta();
                    publisher.publish(&mut aggregator, updates);
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                }
                Some(Command::FinalFlush(done)) => {
                    // Stacks of a stall that just happened are worth a short wait.
                    let in_flight = shared.clone();
                    let _ = tokio::task::spawn_blocking(move || wait_for_samples(&in_flight)).await;
                    // Dumps finished meanwhile are queued behind this command: in with them.
                    while let Ok(command) = commands.try_recv() {
                        if let Command::Dumped(dump, done) = command {
                            aggregator.add_dump(dump);
                            if let Some(done) = done {
                                let _ = done.send(());
                            }
                        }
                    }
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

/// How often the probe looks for tasks gone idle (under `TASKSCOPE_DUMP_WHEN_IDLE`).
const IDLE_CHECK: Duration = Duration::from_millis(250);
/// Polls this soon after a dump are the ones it caused (tokio re-polls every task it
/// traced): they do not make a task newly idle.
const DUMP_AFTERMATH_NS: u64 = 50_000_000;
/// Idle dumps: the shortest interval between two, doubled after every tenth (up to 32x),
/// so that a service whose tasks keep going idle is not paused every second for long.
const IDLE_DUMP_INTERVAL: Duration = Duration::from_secs(1);

/// Dumps are taken and symbolized off the runner's loop (they take from milliseconds to
/// seconds) and come back to it as [`Command::Dumped`] to be published.
struct Dumps {
    shared: Arc<Shared>,
    #[cfg_attr(not(taskscope_dumps), allow(dead_code))]
    commands: mpsc::UnboundedSender<Command>,
    #[cfg(taskscope_dumps)]
    requests: Arc<crate::dump::requests::Requests>,
    idle: IdleDumps,
}

/// Counts a dump in flight until it has been handed to the runner to publish.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    #[cfg_attr(not(taskscope_dumps), allow(dead_code))]
    fn count(shared: &'a Shared) -> Self {
        shared
            .dumps_in_flight
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0
            .dumps_in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Where idle dumps stand.
#[derive(Default)]
struct IdleDumps {
    in_flight: bool,
    /// Task polls that ended before this are covered by the last dump.
    covered_after_ns: u64,
    taken: u32,
    next_allowed: Option<Instant>,
}

impl Dumps {
    /// Takes an idle dump when a task went idle since the last one, and one is allowed.
    fn when_idle(&mut self, aggregator: &Aggregator) {
        let Some(idle) = self.shared.config.dump_when_idle else {
            return;
        };
        let allowed = self.idle.next_allowed.is_none_or(|at| Instant::now() >= at);
        if self.idle.in_flight
            || !allowed
            || !aggregator.went_idle(self.idle.covered_after_ns, idle.as_nanos() as u64)
        {
            return;
        }
        #[cfg(taskscope_dumps)]
        {
            let unseen = Some(crate::dump::runtimes::Ending::Unseen);
            if crate::dump::runtimes::all(unseen).is_empty() {
                return;
            }
            self.idle.in_flight = true;
            let (shared, commands) = (self.shared.clone(), self.commands.clone());
            let requests = self.requests.clone();
            tokio::spawn(async move {
                let _counted = InFlight::count(&shared);
                let dump = requests.when_idle(&shared).await;
                let _ = commands.send(Command::Dumped(dump, None));
            });
        }
    }

    /// Notes a dump about to be published (the end of an idle one).
    fn published(&mut self, dump: &v1::Dump) {
        if dump.trigger != v1::DumpTrigger::Idle as i32 {
            return;
        }
        let idle = &mut self.idle;
        idle.in_flight = false;
        idle.covered_after_ns = crate::clock::now_ns() + DUMP_AFTERMATH_NS;
        idle.taken += 1;
        let backoff = 1u32 << (idle.taken / 10).min(5);
        idle.next_allowed = Some(Instant::now() + IDLE_DUMP_INTERVAL * backoff);
    }

    fn requested(&self, reply: oneshot::Sender<Result<v1::Dump, Status>>) {
        #[cfg(taskscope_dumps)]
        {
            let (shared, commands) = (self.shared.clone(), self.commands.clone());
            let requests = self.requests.clone();
            tokio::spawn(async move {
                let _counted = InFlight::count(&shared);
                let (dump, fresh) = requests.answer(&shared).await;
                if fresh {
                    let _ = commands.send(Command::Dumped(dump.clone(), None));
                }
                let _ = reply.send(Ok(dump));
            });
        }
        #[cfg(not(taskscope_dumps))]
        {
            let reason = crate::dump::unavailable_reason().unwrap_or_default();
            let _ = reply.send(Err(Status::failed_precondition(reason)));
        }
    }

    #[cfg(taskscope_dumps)]
    fn at_shutdown(
        &self,
        raw: Result<crate::dump::capture::RawDump, String>,
        taken_ns: u64,
        done: std::sync::mpsc::Sender<()>,
    ) {
        let (shared, commands) = (self.shared.clone(), self.commands.clone());
        tokio::spawn(async move {
            let _counted = InFlight::count(&shared);
            let trigger = v1::DumpTrigger::Shutdown;
            let dump = crate::dump::build(&shared, raw, trigger, taken_ns).await;
            let _ = commands.send(Command::Dumped(dump, Some(done)));
        });
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
