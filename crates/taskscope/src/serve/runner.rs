//! The probe's own thread and runtime: publishes updates to watchers and the recorder,
//! serves gRPC, and answers the final flush at process exit.
//!
//! It is deliberately separate from the app's runtimes: a stalled app runtime cannot stall
//! the probe (which is exactly when it must report), and a slow client or disk can slow
//! only the probe.

use std::sync::Arc;
use std::time::{Duration, Instant};

use taskscope_api::v1;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::aggregate::aggregator::Aggregator;
use crate::aggregate::snapshots::Snapshots;
use crate::aggregate::watchers::{Encoded, Feed, Watcher};
use crate::export::recorder::Recorder;
use crate::serve::command::Command;
use crate::serve::server::Listener;
use crate::tasks::shared::Shared;

/// How often queued spawns are taken in between publishes.
const DRAIN_INTERVAL: Duration = Duration::from_millis(10);
/// At exit, how long watchers' connections get to take what is queued for them.
const EXIT_DRAIN: Duration = Duration::from_millis(500);

/// Starts the probe's thread and the watchdog's (kept in `shared`, to be joined once the
/// probe is stopped). Returns the command channel.
pub(crate) fn start(
    shared: Arc<Shared>,
    listener: Option<Listener>,
    metrics: Option<Listener>,
    tls: Option<crate::serve::tls::ServerTls>,
) -> std::io::Result<mpsc::UnboundedSender<Command>> {
    // Before anything publishes: the first update says whether stacks can be captured.
    let (capture, symbolize) = crate::detect::stall_stack::start(&shared);
    let (commands, command_receiver) = mpsc::unbounded_channel();
    let events = shared
        .event_receiver
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .expect("a probe is started once");
    let thread_shared = shared.clone();
    // Before the app goes on: a client started right after must find the token file.
    let token = listener.as_ref().and_then(|_| {
        crate::base::auth::token_for(&shared.config)
            .inspect_err(|e| crate::base::diag::warn(&e.to_string()))
            .ok()
    });
    let channels = Channels {
        events,
        commands: command_receiver,
        own: commands.clone(),
        symbolize,
    };
    let endpoints = Endpoints {
        grpc: listener.zip(token),
        tls,
        metrics,
    };
    let probe = std::thread::Builder::new()
        .name("taskscope-probe".into())
        .spawn(move || probe_thread(thread_shared, channels, endpoints))?;
    shared.own_thread(probe);
    shared.own_thread(crate::detect::watchdog::start(shared.clone(), capture)?);
    Ok(commands)
}

/// The queues the probe thread reads, and its own way to send itself commands.
struct Channels {
    events: crate::tasks::shared::EventReceivers,
    commands: mpsc::UnboundedReceiver<Command>,
    own: mpsc::UnboundedSender<Command>,
    /// The symbolizer's queue, for dumps.
    #[cfg_attr(not(taskscope_dumps), allow(dead_code))]
    symbolize: Option<crate::detect::stall_stack::Symbolize>,
}

/// What the probe thread serves: gRPC (with its token, and TLS when set up) and the
/// metrics endpoint.
struct Endpoints {
    grpc: Option<(Listener, crate::base::auth::Token)>,
    tls: Option<crate::serve::tls::ServerTls>,
    metrics: Option<Listener>,
}

/// The probe's thread: a runtime of its own (so the app's never runs the probe's work)
/// serving the endpoints and running the aggregator's loop until the probe stops.
fn probe_thread(shared: Arc<Shared>, channels: Channels, endpoints: Endpoints) {
    crate::base::quiet::quiet_forever();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("taskscope-probe")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            crate::base::diag::warn(&format!("cannot start the probe's runtime: {e}"));
            return;
        }
    };
    let mut aggregator = Aggregator::new(shared.clone(), channels.events);
    runtime.block_on(async move {
        if let Some(listener) = endpoints.metrics {
            let tally = crate::serve::metrics::start(&shared.config, listener);
            aggregator.add_exporter(Box::new(tally));
        }
        if let Some(endpoint) = &shared.config.otlp_endpoint
            && let Some(otlp) = crate::export::otlp::Otlp::start(endpoint, aggregator.program())
        {
            aggregator.add_exporter(Box::new(otlp));
        }
        if let Some((listener, token)) = endpoints.grpc {
            let limits = shared.config.limits;
            tokio::spawn(crate::serve::server::serve(
                listener,
                channels.own.clone(),
                limits,
                token,
                endpoints.tls,
            ));
        }
        let runner = Runner::new(shared.clone(), aggregator, channels.own, channels.symbolize);
        run(shared, runner, channels.commands).await;
    });
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

/// The probe thread's state: what the loop in [`run`] hands each tick and command to.
struct Runner {
    shared: Arc<Shared>,
    aggregator: Aggregator,
    publisher: Publisher,
    snapshots: Snapshots,
    dumps: Dumps,
    /// When the last `Flight` window was cut for a client (at most one per
    /// [`FLIGHT_CALL_GAP`]).
    last_flight_call: Option<Instant>,
}

/// The least time between two `Flight` windows cut for clients. Cutting one holds the
/// recorder's history, which the watchdog drains the threads' rings into at every scan:
/// a client calling in a loop must not keep it from doing so.
const FLIGHT_CALL_GAP: Duration = Duration::from_millis(250);

async fn run(
    shared: Arc<Shared>,
    mut runner: Runner,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut idle_check = interval(IDLE_CHECK);
    let dump_when_idle = cfg!(taskscope_dumps) && shared.config.dumps_when_idle();
    let mut publish = interval(shared.config.publish_interval);
    let mut drain = interval(DRAIN_INTERVAL);
    loop {
        tokio::select! {
            _ = publish.tick() => runner.publish_delta(),
            _ = shared.urgent.notified() => runner.publish_delta(),
            _ = idle_check.tick(), if dump_when_idle => runner.dumps.when_idle(&runner.aggregator),
            _ = drain.tick() => runner.housekeeping(),
            command = commands.recv() => match command {
                None | Some(Command::Stop) => break,
                Some(Command::FinalFlush(done)) => runner.final_flush(&mut commands, done).await,
                Some(command) => runner.command(command),
            }
        }
    }
}

/// A ticker that, when the probe thread falls behind, waits a whole period again rather
/// than firing the missed ticks in a burst.
fn interval(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

impl Runner {
    fn new(
        shared: Arc<Shared>,
        aggregator: Aggregator,
        own_commands: mpsc::UnboundedSender<Command>,
        #[cfg_attr(not(taskscope_dumps), allow(unused_variables))] symbolize: Option<
            crate::detect::stall_stack::Symbolize,
        >,
    ) -> Self {
        let dumps = Dumps {
            shared: shared.clone(),
            commands: own_commands,
            #[cfg(taskscope_dumps)]
            requests: Arc::new(crate::detect::dump::requests::Requests::new(symbolize)),
            idle: IdleDumps::default(),
        };
        let publisher = Publisher {
            watchers: Vec::new(),
            recorder: None,
            trim_due: false,
            last_trim: Instant::now(),
        };
        let mut runner = Self {
            shared,
            aggregator,
            publisher,
            snapshots: Snapshots::new(),
            dumps,
            last_flight_call: None,
        };
        runner.start_recording();
        runner
    }

    /// Starts `TASKSCOPE_RECORD`'s recording, when asked for, with a snapshot.
    fn start_recording(&mut self) {
        let Some(path) = &self.shared.config.record else {
            return;
        };
        let path = crate::export::recorder::resolve_path(path, self.aggregator.program());
        match Recorder::start(path.clone(), self.shared.clone()) {
            Ok(mut recorder) => {
                recorder.write(self.aggregator.snapshot());
                self.publisher.recorder = Some(recorder);
                self.aggregator.set_has_consumers(true);
            }
            Err(e) => crate::base::diag::warn(&format!("cannot record to {}: {e}", path.display())),
        }
    }

    /// Publishes what changed since the last time.
    fn publish_delta(&mut self) {
        let updates = self.aggregator.delta();
        self.publisher.publish(&mut self.aggregator, updates);
    }

    /// Every [`DRAIN_INTERVAL`]: the clock, the queues, expired snapshots, freed memory.
    fn housekeeping(&mut self) {
        crate::base::clock::recalibrate();
        self.aggregator.catch_up();
        self.publisher.trim_due |= self.snapshots.expire();
        self.publisher.trim_if_due();
    }

    /// Every command but the final flush.
    fn command(&mut self, command: Command) {
        match command {
            Command::Watch(reply) => {
                let max_watchers = self.shared.config.limits.max_watchers;
                let watcher = watch(&mut self.publisher, &mut self.aggregator, max_watchers);
                let _ = reply.send(watcher);
            }
            Command::Snapshot { page, reply } => {
                let _ = reply.send(self.snapshots.page(&mut self.aggregator, page));
            }
            Command::Dump(reply) => self.dumps.requested(reply),
            Command::Flight { span_ns, reply } => {
                let _ = reply.send(self.flight_now(span_ns));
            }
            #[cfg(taskscope_dumps)]
            Command::ShutdownDump {
                raw,
                taken_ns,
                done,
            } => {
                self.dumps.at_shutdown(raw, taken_ns, done);
            }
            Command::Dumped(dump, done) => {
                self.dumps.published(&dump);
                self.aggregator.add_dump(dump);
                self.publish_delta();
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Command::FinalFlush(done) => {
                // `run` awaits `final_flush` instead; answered so that nobody waits.
                let _ = done.send(());
            }
            Command::Stop => {}
        }
    }

    /// The flight recorder's last `span_ns` (0: the configured span) up to now, for a
    /// client (`Flight`): read from the recorder's history like a stall's window, taking
    /// nothing from it. A span in which no thread recorded anything is an empty window.
    fn flight_now(&mut self, span_ns: u64) -> Result<v1::FlightWindow, Status> {
        let flight = &self.shared.flight;
        if !flight.is_on() {
            return Err(Status::failed_precondition(
                "the flight recorder is off in this process (TASKSCOPE_FLIGHT=off); start the \
                 app without it, or with a size such as TASKSCOPE_FLIGHT=8MiB",
            ));
        }
        let now = Instant::now();
        if self
            .last_flight_call
            .is_some_and(|last| now.duration_since(last) < FLIGHT_CALL_GAP)
        {
            return Err(Status::resource_exhausted(format!(
                "the probe cuts at most one flight window every {} ms; call again",
                FLIGHT_CALL_GAP.as_millis()
            )));
        }
        self.last_flight_call = Some(now);
        let span_ns = match span_ns {
            0 => self.shared.config.flight_span.as_nanos() as u64,
            span_ns => span_ns,
        };
        let to_ns = crate::base::clock::now_ns();
        let from_ns = to_ns.saturating_sub(span_ns);
        Ok(flight
            .window(&crate::tasks::threads::all(), from_ns, to_ns, None)
            .unwrap_or(v1::FlightWindow {
                from_ns,
                to_ns,
                ..Default::default()
            }))
    }

    /// The process exits: everything published as the last update, the watchers given a
    /// moment to take it, the recording flushed; `done` hears when it is written.
    async fn final_flush(
        &mut self,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        done: std::sync::mpsc::Sender<()>,
    ) {
        // Stacks of a stall that just happened are worth a short wait.
        let in_flight = self.shared.clone();
        let _ = tokio::task::spawn_blocking(move || wait_for_samples(&in_flight)).await;
        // Dumps finished meanwhile are queued behind this command: in with them.
        while let Ok(command) = commands.try_recv() {
            if let Command::Dumped(dump, done) = command {
                self.aggregator.add_dump(dump);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
        }
        let mut updates = self.aggregator.delta();
        if updates.is_empty() {
            updates.push(v1::Update {
                now_ns: crate::base::clock::now_ns(),
                ..Default::default()
            });
        }
        if let Some(last) = updates.last_mut() {
            last.process_exited = true;
        }
        self.publisher.publish(&mut self.aggregator, updates);
        self.publisher.drain_watchers().await;
        match self.publisher.recorder.as_ref().and_then(Recorder::flush) {
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
    requests: Arc<crate::detect::dump::requests::Requests>,
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
            let unseen = Some(crate::tasks::runtimes::Ending::Unseen);
            if crate::tasks::runtimes::all(unseen).is_empty() {
                return;
            }
            self.idle.in_flight = true;
            let (shared, commands) = (self.shared.clone(), self.commands.clone());
            let requests = self.requests.clone();
            tokio::spawn(async move {
                let _counted = InFlight::count(&shared);
                let dump = requests.when_idle().await;
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
        idle.covered_after_ns = crate::base::clock::now_ns() + DUMP_AFTERMATH_NS;
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
                let (dump, fresh) = requests.answer().await;
                if fresh {
                    let _ = commands.send(Command::Dumped(dump.clone(), None));
                }
                let _ = reply.send(Ok(dump));
            });
        }
        #[cfg(not(taskscope_dumps))]
        {
            let reason = crate::detect::dump::unavailable_reason().unwrap_or_default();
            let _ = reply.send(Err(Status::failed_precondition(reason)));
        }
    }

    #[cfg(taskscope_dumps)]
    fn at_shutdown(
        &self,
        raw: Result<crate::detect::dump::capture::RawDump, String>,
        taken_ns: u64,
        done: std::sync::mpsc::Sender<()>,
    ) {
        let (shared, commands) = (self.shared.clone(), self.commands.clone());
        let requests = self.requests.clone();
        tokio::spawn(async move {
            let _counted = InFlight::count(&shared);
            let trigger = v1::DumpTrigger::Shutdown;
            let dump = requests.build(raw, trigger, taken_ns).await;
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
    let (watcher, feed) = crate::aggregate::watchers::open(aggregator.snapshot());
    if let Some(watcher) = watcher {
        publisher.watchers.push(watcher);
        aggregator.set_has_consumers(true);
    }
    Ok(feed)
}
