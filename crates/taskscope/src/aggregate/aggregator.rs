//! The aggregator: folds what app threads and the watchdog report into the probe's state,
//! and turns that state into `Update`s (a snapshot for a new watcher, deltas afterwards).
//!
//! It runs on the probe's own thread. Its costs scale with the number of live tasks per
//! publish interval, never with the number of polls: per-poll numbers are read from the
//! task cells, which already hold totals.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use prost::Message;
use taskscope_api::v1;

use crate::aggregate::exporter::{Exporter, Published};
use crate::aggregate::folding::Folding;
use crate::base::clock;
use crate::base::flight_budget::RETAINED_WINDOWS;
use crate::tasks::cell::{Kind, TaskCell};
use crate::tasks::shared::{EventReceivers, ProbeEvent, Shared};
use crate::tasks::threads;

/// No update is made larger than this (tonic refuses messages over 4 MiB by default).
const MAX_UPDATE_BYTES: usize = 1024 * 1024;
/// Ended stalls kept for new watchers.
const RETAINED_STALLS: usize = 1_000;
/// Counts of tasks alive at a runtime's shutdown kept for new watchers.
const RETAINED_ALIVE_COUNTS: usize = 1_000;

/// A stall whose poll is still running.
struct ActiveStall {
    stall: v1::Stall,
    /// Already handed to clients once (as STARTED).
    announced: bool,
}

/// Changes not yet published.
#[derive(Default)]
struct Pending {
    /// Converted to `TaskSpawned` only when published.
    spawned: Vec<Arc<TaskCell>>,
    stats: Vec<v1::TaskStats>,
    ended: Vec<v1::TaskEnded>,
    stalls: BTreeMap<u64, v1::Stall>,
    dumps: Vec<v1::Dump>,
    alive_at_shutdown: Vec<v1::AliveAtShutdown>,
    /// Each recorded thread's polls since the last publish, in buckets.
    activity: Vec<v1::ThreadActivity>,
    /// The tallies of short-lived tasks by site that grew since the last publish, whole
    /// (`folding.rs`).
    folded: Vec<v1::FoldedTasks>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.spawned.is_empty()
            && self.stats.is_empty()
            && self.ended.is_empty()
            && self.stalls.is_empty()
            && self.dumps.is_empty()
            && self.alive_at_shutdown.is_empty()
            && self.activity.is_empty()
            && self.folded.is_empty()
    }
}

pub(crate) struct Aggregator {
    shared: Arc<Shared>,
    events: EventReceivers,
    process: v1::ProcessInfo,
    live: HashMap<u64, Arc<TaskCell>>,
    /// Ended tasks kept for a while so that new clients see their outcomes, oldest first.
    /// Kept as cells and turned into messages only when a snapshot needs them: most are
    /// never asked for.
    ended: VecDeque<Arc<TaskCell>>,
    /// Stalls still running, by (thread, poll start).
    active_stalls: HashMap<(u32, u64), ActiveStall>,
    recent_stalls: VecDeque<v1::Stall>,
    /// Runtimes that shut down with tasks alive, where tasks are not seen one by one.
    recent_alive_at_shutdown: VecDeque<v1::AliveAtShutdown>,
    next_stall_id: u64,
    /// Where the last stall's flight-recorder window ended: the next one starts no
    /// earlier, so that windows never repeat an event.
    flight_until_ns: u64,
    pending: Pending,
    /// The latest await-chain dump, for new watchers' snapshots.
    latest_dump: Option<v1::Dump>,
    published_runtime: Option<v1::RuntimeState>,
    published_drops: Option<v1::Drops>,
    published_instrumentation: v1::Instrumentation,
    /// Whether tokio's task spans reach the layer at all (`observe/reach.rs`).
    reach: crate::observe::reach::Reach,
    last_publish_ns: u64,
    /// Someone (a watcher, the recorder) takes deltas. Without, the aggregator only keeps
    /// its state current (spawns, ends, stalls) and builds no messages: a new watcher
    /// starts from a snapshot read straight from the task cells anyway.
    has_consumers: bool,
    /// The exporters on (Prometheus metrics, OTLP records), fed as things come in.
    exporters: Vec<Box<dyn Exporter>>,
    /// Locks and semaphores with their holders, and the graph last published.
    wait_graph: crate::aggregate::wait_graph::WaitGraph,
    /// Where the threads' activity summaries stopped (`tasks/activity.rs`).
    activity: crate::tasks::activity::Cursor,
    /// The summaries of the last seconds, for new watchers' snapshots.
    recent_activity: crate::aggregate::recent_activity::RecentActivity,
    /// Short-lived tasks counted by site instead of sent one by one.
    folding: Folding,
    /// Cells of folded tasks, handed back for reuse after each drain.
    folded_cells: Vec<Arc<TaskCell>>,
}

impl Aggregator {
    pub(crate) fn new(shared: Arc<Shared>, events: EventReceivers) -> Self {
        let process = process_info(&shared);
        let wait_graph = crate::aggregate::wait_graph::WaitGraph::new(&shared);
        Self {
            wait_graph,
            shared,
            events,
            published_instrumentation: v1::Instrumentation::try_from(process.instrumentation)
                .unwrap_or_default(),
            process,
            live: HashMap::new(),
            ended: VecDeque::new(),
            active_stalls: HashMap::new(),
            recent_stalls: VecDeque::new(),
            recent_alive_at_shutdown: VecDeque::new(),
            next_stall_id: 1,
            flight_until_ns: 0,
            pending: Pending::default(),
            latest_dump: None,
            published_runtime: None,
            published_drops: None,
            reach: Default::default(),
            last_publish_ns: 0,
            has_consumers: false,
            exporters: Vec::new(),
            activity: Default::default(),
            recent_activity: Default::default(),
            folding: Folding::default(),
            folded_cells: Vec::new(),
        }
    }

    /// Feeds `exporter` from now on.
    pub(crate) fn add_exporter(&mut self, exporter: Box<dyn Exporter>) {
        self.exporters.push(exporter);
    }

    /// Takes in everything queued since the last call.
    pub(crate) fn drain(&mut self) {
        // Spawns first, so a stall's task is known before the stall.
        let posted = threads::all()
            .iter()
            .flat_map(|slot| slot.take_spawned())
            .map(ProbeEvent::Spawned)
            .collect::<Vec<_>>();
        let spawns = std::iter::from_fn(|| self.events.spawns.try_recv().ok());
        let events: Vec<ProbeEvent> = posted.into_iter().chain(spawns).collect();
        let stalls = std::iter::from_fn(|| self.events.stalls.try_recv().ok());
        let events = events.into_iter().chain(stalls.collect::<Vec<_>>());
        for event in events {
            match event {
                ProbeEvent::Spawned(cell) => self.task_spawned(cell),
                ProbeEvent::StallRunning {
                    thread,
                    task,
                    started_ns,
                    now_ns,
                } => self.stall_running(thread, task, started_ns, now_ns),
                ProbeEvent::StallSamples {
                    thread,
                    started_ns,
                    samples,
                    activity,
                } => self.stall_sampled(thread, started_ns, samples, activity),
                ProbeEvent::StallEnded {
                    thread,
                    task,
                    started_ns,
                    duration_ns,
                    own,
                    sched,
                } => self.stall_ended(thread, task, started_ns, duration_ns, own, sched),
                ProbeEvent::AliveAtShutdown(alive) => self.alive_at_shutdown(alive),
            }
        }
        self.wait_graph.drain(&self.shared);
        if !self.folded_cells.is_empty() {
            crate::tasks::recycle::give_back(std::mem::take(&mut self.folded_cells));
        }
    }

    /// A task was announced: live from now on, or straight to the ended ones when it is
    /// over already.
    fn task_spawned(&mut self, cell: Arc<TaskCell>) {
        let id = cell.identity.id;
        if self.has_consumers && self.live.contains_key(&id) {
            return;
        }
        if !self.exporters.is_empty() {
            let now = clock::now_ns();
            for exporter in &mut self.exporters {
                exporter.on_spawn(&cell, now);
            }
        }
        // Over already, and one of many alike: counted with its site, not kept.
        if self.has_consumers
            && self.shared.config.fold
            && cell.end().is_some()
            && self.folding.fold(&cell, self.shared.threshold_ns)
        {
            self.folded_cells.push(cell);
            return;
        }
        if self.has_consumers {
            self.pending.spawned.push(cell.clone());
        }
        if cell.end().is_some() {
            // Over before it was taken in (most short tasks): straight to the ended ones,
            // as `scan` would move it.
            if self.has_consumers {
                self.pending.ended.extend(ended_message(&cell));
            }
            self.ended.push_back(cell);
        } else {
            self.live.insert(id, cell);
        }
    }

    /// A new stall number, for a stall first heard of now.
    fn new_stall(&mut self, task: u64, thread: u32, started_ns: u64) -> v1::Stall {
        let stall_id = self.next_stall_id;
        self.next_stall_id += 1;
        v1::Stall {
            stall_id,
            task_id: task,
            thread,
            poll_started_ns: started_ns,
            ..Default::default()
        }
    }

    /// The watchdog sees a poll past the threshold still running: STARTED the first time
    /// clients hear of it, ONGOING afterwards.
    fn stall_running(&mut self, thread: u32, task: u64, started_ns: u64, now_ns: u64) {
        if !self.active_stalls.contains_key(&(thread, started_ns)) {
            for exporter in &mut self.exporters {
                exporter.on_stall_start(task);
            }
            let stall = self.new_stall(task, thread, started_ns);
            let active = ActiveStall {
                announced: false,
                stall,
            };
            self.active_stalls.insert((thread, started_ns), active);
        }
        let Some(active) = self.active_stalls.get_mut(&(thread, started_ns)) else {
            return;
        };
        let stall = &mut active.stall;
        // Clients must see STARTED once, even when the next refresh comes before this one
        // is published.
        let started_unpublished = self
            .pending
            .stalls
            .get(&stall.stall_id)
            .is_some_and(|p| p.phase == v1::StallPhase::Started as i32);
        stall.phase = if active.announced && !started_unpublished {
            v1::StallPhase::Ongoing
        } else {
            v1::StallPhase::Started
        } as i32;
        active.announced = true;
        stall.duration_ns = now_ns.saturating_sub(started_ns);
        self.pending.stalls.insert(stall.stall_id, stall.clone());
    }

    /// Stacks sampled during a stall, running or ended since.
    fn stall_sampled(
        &mut self,
        thread: u32,
        started_ns: u64,
        samples: Vec<v1::StackSample>,
        activity: v1::Activity,
    ) {
        let stall = match self.active_stalls.get_mut(&(thread, started_ns)) {
            Some(active) => Some(&mut active.stall),
            None => self
                .recent_stalls
                .iter_mut()
                .rev()
                .find(|s| s.thread == thread && s.poll_started_ns == started_ns),
        };
        let Some(stall) = stall else { return };
        stall.samples.extend(samples);
        if activity != v1::Activity::Unknown {
            stall.activity = activity as i32;
        }
        // Republished in its current phase (ENDED stays ENDED); a STARTED not yet sent
        // stays STARTED.
        let mut update = stall.clone();
        if let Some(pending) = self.pending.stalls.get(&stall.stall_id) {
            update.phase = pending.phase;
        }
        self.pending.stalls.insert(update.stall_id, update);
    }

    /// A poll past the threshold returned, with its exact duration, `own` of it the
    /// probe's, and the thread's scheduler totals over it.
    fn stall_ended(
        &mut self,
        thread: u32,
        task: u64,
        started_ns: u64,
        duration_ns: u64,
        own: threads::OwnTime,
        sched: Option<crate::base::schedstat::Window>,
    ) {
        let active = self.active_stalls.remove(&(thread, started_ns));
        if active.is_none() {
            for exporter in &mut self.exporters {
                exporter.on_stall_start(task);
            }
        }
        let mut stall = match active {
            Some(active) => active.stall,
            None => self.new_stall(task, thread, started_ns),
        };
        stall.phase = v1::StallPhase::Ended as i32;
        stall.duration_ns = duration_ns;
        stall.probe_ns = own.wall_ns.min(duration_ns);
        stall.probe_exact_wall_ns = own.exact_wall_ns.min(stall.probe_ns);
        stall.probe_cpu_ns = own.exact_cpu_ns.min(stall.probe_exact_wall_ns);
        if let Some(window) = sched {
            let measured_ns = (started_ns + duration_ns).saturating_sub(window.from_ns);
            stall.measured_ns = measured_ns.min(duration_ns);
            stall.waiting_for_cpu_ns = window
                .to
                .waiting_ns
                .saturating_sub(window.from.waiting_ns)
                .min(stall.measured_ns);
        }
        stall.flight = self.flight_window(thread, started_ns, duration_ns);
        self.pending.stalls.insert(stall.stall_id, stall.clone());
        if !self.exporters.is_empty() {
            let (cell, now) = (self.live.get(&task).map(|cell| &**cell), clock::now_ns());
            for exporter in &mut self.exporters {
                exporter.on_stall_end(&stall, cell, now);
            }
        }
        self.recent_stalls.push_back(stall);
        if self.recent_stalls.len() > RETAINED_STALLS {
            self.recent_stalls.pop_front();
        }
        // Watchers that connect later get the latest few windows; the rest were published.
        (self.recent_stalls.iter_mut().rev())
            .filter(|s| s.flight.is_some())
            .skip(RETAINED_WINDOWS)
            .for_each(|s| s.flight = None);
    }

    /// The flight recorder's window for a stall on `thread` that started at `started_ns`
    /// and lasted `duration_ns`: from the configured span before it (or the previous
    /// window's end, when later) to its end.
    fn flight_window(
        &mut self,
        thread: u32,
        started_ns: u64,
        duration_ns: u64,
    ) -> Option<v1::FlightWindow> {
        let span_ns = self.shared.config.flight_span.as_nanos() as u64;
        let from_ns = started_ns.saturating_sub(span_ns).max(self.flight_until_ns);
        let to_ns = started_ns + duration_ns;
        if from_ns >= to_ns {
            self.shared.flight.let_go(thread);
            return None;
        }
        let window = (self.shared.flight).window(&threads::all(), from_ns, to_ns, Some(thread))?;
        self.flight_until_ns = to_ns;
        Some(window)
    }

    /// Reads every live task's cell: changed statistics and ended tasks become pending.
    fn scan(&mut self, now_ns: u64) {
        let mut finished = Vec::new();
        for (id, cell) in &self.live {
            if cell.end().is_some() {
                finished.push(*id);
                for exporter in &mut self.exporters {
                    exporter.on_end(cell);
                }
                if self.has_consumers {
                    self.pending.ended.extend(ended_message(cell));
                }
                self.ended.push_back(cell.clone());
            } else if self.has_consumers && cell.take_dirty() {
                self.pending.stats.push(cell.stats(false));
            }
        }
        for id in finished {
            self.live.remove(&id);
        }
        self.expire(now_ns);
    }

    /// Forgets ended tasks past their retention, and the oldest beyond the size cap.
    fn expire(&mut self, now_ns: u64) {
        let retention_ns = self.shared.config.retention.as_nanos() as u64;
        let max = self.shared.config.max_retained;
        let mut expired_cells = Vec::new();
        while let Some(oldest) = self.ended.front() {
            let ended_ns = oldest.end().map_or(0, |end| end.at_ns);
            let expired = ended_ns.saturating_add(retention_ns) < now_ns;
            let over_cap = self.ended.len() > max;
            if !expired && !over_cap {
                break;
            }
            if over_cap && !expired {
                self.shared
                    .drops
                    .ended_tasks_evicted
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            expired_cells.extend(self.ended.pop_front());
        }
        if !expired_cells.is_empty() {
            crate::tasks::recycle::give_back(expired_cells);
        }
    }

    /// Checks whether tokio's task spans are filtered away before they reach the layer.
    fn look_for_spans(&mut self) {
        let seen = self
            .shared
            .instrumentation_seen
            .load(std::sync::atomic::Ordering::Relaxed);
        self.reach.update(seen);
    }

    fn instrumentation(&self) -> v1::Instrumentation {
        if !cfg!(tokio_unstable) {
            v1::Instrumentation::Missing
        } else if self.reach.filtered() {
            v1::Instrumentation::Filtered
        } else if self
            .shared
            .instrumentation_seen
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            v1::Instrumentation::Seen
        } else {
            v1::Instrumentation::Waiting
        }
    }

    fn runtime_state(&self) -> v1::RuntimeState {
        let workers = crate::tasks::worker_park::all();
        let threads = threads::all()
            .iter()
            .map(|slot| {
                let polling = slot.read();
                let mut state = v1::ThreadState {
                    thread: slot.number,
                    name: slot.name.to_string(),
                    polling_task: polling.map_or(0, |p| p.task),
                    poll_started_ns: polling.map_or(0, |p| p.started_ns),
                    exited: slot.has_exited(),
                    os_tid: slot.os_tid,
                    ..Default::default()
                };
                if let Some(worker) = workers.iter().find(|w| w.slot.number == slot.number) {
                    worker_state(&worker.park, &mut state);
                }
                state
            })
            .collect();
        let (mut blocking_alive, mut blocking_running) = (0, 0);
        for cell in self.live.values() {
            if cell.identity.kind == Kind::Blocking {
                blocking_alive += 1;
                blocking_running += u64::from(cell.is_running());
            }
        }
        let runtimes = crate::tasks::runtimes::all(None);
        v1::RuntimeState {
            threads,
            blocking_alive,
            blocking_running,
            runtimes_known: !runtimes.is_empty(),
            alive_tasks: (runtimes.iter())
                .map(|r| r.metrics().num_alive_tasks() as u64)
                .sum(),
            workers: (runtimes.iter())
                .map(|r| r.metrics().num_workers() as u32)
                .sum(),
        }
    }

    /// Everything that changed since the last call, as updates of bounded size; empty when
    /// nothing changed (but for a heartbeat every second, so clients see the probe alive).
    pub(crate) fn delta(&mut self) -> Vec<v1::Update> {
        self.drain();
        self.look_for_spans();
        let now = clock::now_ns();
        self.scan(now);
        if !self.exporters.is_empty() {
            let stalled: Vec<u64> = self
                .active_stalls
                .values()
                .map(|a| a.stall.task_id)
                .collect();
            let published = Published {
                now_ns: now,
                live: &self.live,
                stalled_tasks: &stalled,
                recent_stalls: &self.recent_stalls,
                drops: self.shared.drops(),
            };
            for exporter in &mut self.exporters {
                exporter.on_publish(&published);
            }
        }
        if !self.has_consumers {
            self.pending = Pending::default();
            return Vec::new();
        }
        self.pending.activity =
            (self.shared.flight).activity(&threads::all(), &mut self.activity, now);
        self.recent_activity.keep(&self.pending.activity, now);
        let mut head = self.changed_head(now);
        head.wait_graph = self.wait_graph.changed(self.live.values());
        let head_changed = head.runtime.is_some()
            || head.drops.is_some()
            || head.instrumentation != 0
            || head.wait_graph.is_some();
        let heartbeat_due = now.saturating_sub(self.last_publish_ns) >= 1_000_000_000;
        self.pending.folded = self.folding.take_changed();
        if self.pending.is_empty() && !head_changed && !heartbeat_due {
            return Vec::new();
        }
        self.last_publish_ns = now;
        let pending = std::mem::take(&mut self.pending);
        pack(head, pending)
    }

    /// An update's head: the process-wide facts that changed since they were last
    /// published (each left empty when it did not).
    fn changed_head(&mut self, now: u64) -> v1::Update {
        let mut head = v1::Update {
            now_ns: now,
            ..Default::default()
        };
        let instrumentation = self.instrumentation();
        if instrumentation != self.published_instrumentation {
            self.published_instrumentation = instrumentation;
            head.instrumentation = instrumentation as i32;
        }
        let runtime = self.runtime_state();
        if self.published_runtime.as_ref() != Some(&runtime) {
            self.published_runtime = Some(runtime.clone());
            head.runtime = Some(runtime);
        }
        let drops = self.shared.drops();
        if self.published_drops.as_ref() != Some(&drops) {
            self.published_drops = Some(drops);
            head.drops = Some(drops);
        }
        head
    }

    /// The whole current state, as updates of bounded size marked as a snapshot.
    pub(crate) fn snapshot(&mut self) -> Vec<v1::Update> {
        let now = clock::now_ns();
        self.look_for_spans();
        let mut process = self.process.clone();
        process.instrumentation = self.instrumentation() as i32;
        process.stack_capture = Some(
            self.shared
                .stack_capture
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        );
        // The statistics before the wait-for graph, as in every delta: a client takes the
        // polls of a task the graph shows still waiting as polls that left it there, so no
        // poll may come between the graph and the statistics sent with it.
        let stats: Vec<v1::TaskStats> = self.live.values().map(|c| c.stats(false)).collect();
        let head = v1::Update {
            now_ns: now,
            process: Some(process),
            instrumentation: self.instrumentation() as i32,
            runtime: Some(self.runtime_state()),
            drops: Some(self.shared.drops()),
            wait_graph: Some(self.wait_graph.current(self.live.values())),
            ..Default::default()
        };
        let mut packer = Packer::new(head);
        for cell in self.live.values() {
            packer.push(cell.spawned(), |u| &mut u.spawned);
        }
        for cell in &self.ended {
            packer.push(cell.spawned(), |u| &mut u.spawned);
        }
        for stats in stats {
            packer.push(stats, |u| &mut u.stats);
        }
        for ended in self.ended.iter().filter_map(|cell| ended_message(cell)) {
            packer.push(ended, |u| &mut u.ended);
        }
        let active = self.active_stalls.values().map(|a| &a.stall);
        for stall in self.recent_stalls.iter().chain(active) {
            packer.push(stall.clone(), |u| &mut u.stalls);
        }
        if let Some(dump) = &self.latest_dump {
            packer.push(dump.clone(), |u| &mut u.dumps);
        }
        for folded in self.folding.totals() {
            packer.push(folded.clone(), |u| &mut u.folded);
        }
        for alive in &self.recent_alive_at_shutdown {
            packer.push(alive.clone(), |u| &mut u.alive_at_shutdown);
        }
        self.recent_activity.keep(&[], now);
        for activity in self.recent_activity.iter() {
            packer.push(activity.clone(), |u| &mut u.activity);
        }
        let mut updates = packer.finish();
        mark_snapshot(&mut updates);
        updates
    }

    /// Whether a live task has been idle for `idle_ns` after a poll that ended later than
    /// `covered_after_ns` (the last dump, and the polls it caused, already cover earlier
    /// ones).
    pub(crate) fn went_idle(&self, covered_after_ns: u64, idle_ns: u64) -> bool {
        let now_ns = clock::now_ns();
        self.live.values().any(|cell| {
            let ended_ns = cell.last_poll_end_ns();
            cell.can_stall()
                && cell.end().is_none()
                && !cell.is_running()
                && ended_ns > covered_after_ns
                && now_ns.saturating_sub(ended_ns) >= idle_ns
        })
    }

    fn alive_at_shutdown(&mut self, alive: v1::AliveAtShutdown) {
        if self.recent_alive_at_shutdown.len() >= RETAINED_ALIVE_COUNTS {
            self.recent_alive_at_shutdown.pop_front();
        }
        self.recent_alive_at_shutdown.push_back(alive.clone());
        self.pending.alive_at_shutdown.push(alive);
    }

    /// A dump to publish (and to give new watchers until the next one).
    pub(crate) fn add_dump(&mut self, dump: v1::Dump) {
        self.latest_dump = Some(dump.clone());
        self.pending.dumps.push(dump);
    }

    /// Whether deltas are wanted (see the field).
    pub(crate) fn set_has_consumers(&mut self, has_consumers: bool) {
        self.has_consumers = has_consumers;
    }

    /// The program's name, as clients are told.
    pub(crate) fn program(&self) -> &str {
        &self.process.program
    }

    /// Brings the state up to date without publishing (before a snapshot).
    pub(crate) fn catch_up(&mut self) {
        self.drain();
        // Tasks that ended before they were taken in went straight to the ended ones:
        // past the cap, their cells go back for reuse now rather than at the next publish
        // (in a spawn storm, that is what keeps spawns from allocating).
        self.expire(clock::now_ns());
    }
}

/// How an ended task ended, as clients are told.
fn ended_message(cell: &TaskCell) -> Option<v1::TaskEnded> {
    let end = cell.end()?;
    Some(v1::TaskEnded {
        id: cell.identity.id,
        ended_ns: end.at_ns,
        outcome: end.outcome as i32,
        panic_message: end
            .panic
            .as_ref()
            .map(|p| p.message.clone())
            .unwrap_or_default(),
        panic_location: end
            .panic
            .as_ref()
            .and_then(|p| p.location.clone())
            .unwrap_or_default(),
        panic_held_ns: end.panic.as_ref().map_or(0, |p| p.held_ns),
        thread: end.thread,
        stats: Some(cell.stats(true)),
    })
}

fn mark_snapshot(updates: &mut [v1::Update]) {
    let last = updates.len().saturating_sub(1);
    for (index, update) in updates.iter_mut().enumerate() {
        let mark = match (index == 0, index == last) {
            (true, true) => v1::SnapshotMark::SnapshotOnly,
            (true, false) => v1::SnapshotMark::SnapshotFirst,
            (false, true) => v1::SnapshotMark::SnapshotLast,
            (false, false) => v1::SnapshotMark::SnapshotMore,
        };
        update.snapshot = mark as i32;
    }
}

/// `head` and everything pending, as updates of bounded size.
fn pack(head: v1::Update, pending: Pending) -> Vec<v1::Update> {
    let mut packer = Packer::new(head);
    for cell in pending.spawned {
        packer.push(cell.spawned(), |u| &mut u.spawned);
    }
    for stats in pending.stats {
        packer.push(stats, |u| &mut u.stats);
    }
    for ended in pending.ended {
        packer.push(ended, |u| &mut u.ended);
    }
    for stall in pending.stalls.into_values() {
        packer.push(stall, |u| &mut u.stalls);
    }
    for dump in pending.dumps {
        packer.push(dump, |u| &mut u.dumps);
    }
    for folded in pending.folded {
        packer.push(folded, |u| &mut u.folded);
    }
    for alive in pending.alive_at_shutdown {
        packer.push(alive, |u| &mut u.alive_at_shutdown);
    }
    for activity in pending.activity {
        packer.push(activity, |u| &mut u.activity);
    }
    packer.finish()
}

/// Fills updates item by item, starting a new one before any would pass
/// [`MAX_UPDATE_BYTES`]. Items keep their order, so a task's spawn always precedes its
/// statistics and its end.
struct Packer {
    updates: Vec<v1::Update>,
    current: v1::Update,
    current_len: usize,
}

impl Packer {
    fn new(head: v1::Update) -> Self {
        Self {
            current_len: head.encoded_len(),
            current: head,
            updates: Vec::new(),
        }
    }

    fn push<T: Message>(&mut self, item: T, field: impl Fn(&mut v1::Update) -> &mut Vec<T>) {
        let len = item.encoded_len() + 8;
        if self.current_len + len > MAX_UPDATE_BYTES && self.current_len > 16 {
            let now_ns = self.current.now_ns;
            let full = std::mem::replace(
                &mut self.current,
                v1::Update {
                    now_ns,
                    ..Default::default()
                },
            );
            self.updates.push(full);
            self.current_len = 16;
        }
        self.current_len += len;
        field(&mut self.current).push(item);
    }

    fn finish(mut self) -> Vec<v1::Update> {
        self.updates.push(self.current);
        self.updates
    }
}

/// What this build, on this route, lets the probe see.
fn capability(route: crate::base::config::Route) -> v1::Capability {
    use crate::base::config::Route;
    match (cfg!(tokio_unstable), route) {
        (false, Route::Hooks) => v1::Capability::Workers,
        (false, Route::Tracing) => v1::Capability::None,
        (true, Route::Hooks) => v1::Capability::Tasks,
        (true, Route::Tracing) => v1::Capability::TasksAndWakers,
    }
}

fn process_info(shared: &Shared) -> v1::ProcessInfo {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| {
            std::path::Path::new(&argv0)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(argv0.clone())
        });
    let config = &shared.config;
    v1::ProcessInfo {
        pid: std::process::id(),
        program,
        args: args.collect(),
        start_unix_ns: clock::start_unix_ns(),
        probe_version: env!("CARGO_PKG_VERSION").to_owned(),
        instrumentation: if cfg!(tokio_unstable) {
            v1::Instrumentation::Waiting
        } else {
            v1::Instrumentation::Missing
        } as i32,
        stall_threshold_ns: config.stall_threshold.as_nanos() as u64,
        publish_interval_ns: config.publish_interval.as_nanos() as u64,
        waker_tracking: config.waker_tracking(),
        retention_ns: config.retention.as_nanos() as u64,
        stack_capture: None,
        source: v1::SourceKind::Taskscope as i32,
        route: match config.route {
            crate::base::config::Route::Hooks => v1::Route::Hooks,
            crate::base::config::Route::Tracing => v1::Route::Tracing,
        } as i32,
        unobserved_body: config.unobserved_body.clone().unwrap_or_default(),
        capability: capability(config.route) as i32,
        dumps_unavailable: crate::detect::dump::unavailable_reason()
            .unwrap_or_default()
            .to_owned(),
        holders_unavailable: holders_unavailable(config),
        activity_bucket_ns: if config.flight.is_some() {
            crate::tasks::activity::BUCKET_NS
        } else {
            0
        },
    }
}

/// Why holders of locks and permits cannot be seen here, and what shows them; empty when
/// they can.
fn holders_unavailable(config: &crate::base::config::Config) -> String {
    use crate::base::config::Holders;
    if !cfg!(tokio_unstable) {
        "holders of locks and permits need tokio's instrumentation: build with \
         RUSTFLAGS=\"--cfg tokio_unstable\" and tokio's `tracing` feature"
            .to_owned()
    } else if let Holders::Off(by) = config.holders {
        format!(
            "holder tracking was turned off by {by} (without it the probe tracks who holds \
             each lock and permit, at about 2 µs per acquire)"
        )
    } else if config.uses_hooks() {
        "holders of locks and permits are seen on the tracing route only (tokio's \
         resource spans): start the probe with `taskscope::init()` or `taskscope::layer()` \
         instead of `#[taskscope::main]`; `taskscope::join` edges are seen on both routes"
            .to_owned()
    } else {
        String::new()
    }
}

/// What tokio's thread hooks and stable metrics tell of a runtime worker
/// (`tasks/worker_park.rs`), on builds without `--cfg tokio_unstable`.
fn worker_state(park: &crate::tasks::worker_park::WorkerPark, state: &mut v1::ThreadState) {
    state.worker = true;
    state.parked = park.is_parked();
    state.since_ns = park.since_ns();
    if let Some(submitted) = park.submitted() {
        state.metrics_known = true;
        state.busy_ns = submitted.busy_ns;
        state.parks = submitted.parks;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_turned_off_are_said_to_be_so_and_by_what() {
        use crate::base::config::{Config, Holders, Route};
        let mut config = Config {
            route: Route::Tracing,
            ..Config::default()
        };
        let tracked = holders_unavailable(&config);
        config.holders = Holders::Off(Holders::OFF_BY_BUILDER);
        let off = holders_unavailable(&config);
        if cfg!(tokio_unstable) {
            assert_eq!(tracked, "");
            assert!(
                off.starts_with(
                    "holder tracking was turned off by Builder::holder_tracking(false)"
                ),
                "{off}"
            );
        } else {
            assert!(off.contains("--cfg tokio_unstable"), "{off}");
        }
    }

    #[test]
    fn large_batches_are_split_below_the_size_limit_in_order() {
        let mut packer = Packer::new(v1::Update::default());
        for id in 0..50_000u64 {
            packer.push(
                v1::TaskSpawned {
                    id,
                    name: "x".repeat(40),
                    ..Default::default()
                },
                |u| &mut u.spawned,
            );
        }
        let updates = packer.finish();
        assert!(updates.len() > 1);
        let mut next = 0;
        for update in &updates {
            assert!(update.encoded_len() <= MAX_UPDATE_BYTES);
            for spawned in &update.spawned {
                assert_eq!(spawned.id, next);
                next += 1;
            }
        }
        assert_eq!(next, 50_000);
    }

    #[test]
    fn snapshot_marks_say_where_the_snapshot_starts_and_ends() {
        let mut one = vec![v1::Update::default()];
        mark_snapshot(&mut one);
        assert_eq!(one[0].snapshot, v1::SnapshotMark::SnapshotOnly as i32);
        let mut three = vec![v1::Update::default(); 3];
        mark_snapshot(&mut three);
        let marks: Vec<_> = three.iter().map(|u| u.snapshot).collect();
        assert_eq!(
            marks,
            [
                v1::SnapshotMark::SnapshotFirst as i32,
                v1::SnapshotMark::SnapshotMore as i32,
                v1::SnapshotMark::SnapshotLast as i32
            ]
        );
    }
}
