//! The state of one instrumented process, folded from its `Update` stream.
//!
//! Pure: no I/O and no clock. Time is the probe's own (`Update.now_ns`), so the same stream
//! always gives the same model — what makes `check` reproducible from a recording and the
//! model testable with synthetic updates. The dashboard renders from this model and
//! [`judge`] decides from it what is wrong, so both always agree.

pub(crate) mod activity;
#[cfg(test)]
pub(crate) mod fixture;
pub(crate) mod folded;
pub(crate) mod growth;
pub(crate) mod judge;
pub(crate) mod lanes;
pub(crate) mod names;
pub(crate) mod runtime;
pub(crate) mod stall;
pub(crate) mod task;
pub(crate) mod wait_graph;
pub(crate) mod waiting;

use std::collections::HashMap;

use taskscope_api::v1;

use self::activity::Activity;
use self::folded::Folded;
use self::growth::Growth;
use self::runtime::Runtime;
use self::stall::Stall;
use self::task::{End, Kind, Stats, Task};
use self::wait_graph::WaitGraph;
use self::waiting::Waiting;

/// An interned spawn location (`file:line:col`); see [`Model::location`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct LocationId(pub(crate) u32);

/// Shown where the probe did not know a task's spawn location.
pub(crate) const UNKNOWN_LOCATION: &str = "<unknown>";

/// What the probe said about tokio's instrumentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Instrumentation {
    /// Nothing said yet.
    Unknown,
    /// Tokio task spans have been seen.
    Seen,
    /// Built for it, but no task spawned yet.
    Waiting,
    /// Built without `--cfg tokio_unstable`: tokio emits nothing to see.
    Missing,
    /// Built for it, but the app's subscriber filters tokio's task spans away before they
    /// reach the probe's layer.
    Filtered,
}

/// Why a process whose subscriber filters tokio's task spans away shows no task, and how
/// to compose the subscriber instead: one text for `check`, its notes and the dashboard.
pub(crate) const FILTERED_FIX: &str = "the app's tracing subscriber filters tokio's task \
     spans away before they reach the probe's layer (a filter added with \
     `.with(EnvFilter::...)` decides for every layer, the probe's too), so no task was seen. \
     Put the filter on the log layer instead: \
     `.with(fmt::layer().with_filter(EnvFilter::from_default_env())).with(taskscope::layer())`. \
     (With no such filter, tokio itself made no span: the probe was built without its \
     default feature `tracing-route` and no other crate turned on tokio's `tracing` \
     feature; the app's stderr says which.)";

impl Instrumentation {
    fn from_wire(value: i32) -> Option<Self> {
        match v1::Instrumentation::try_from(value) {
            Ok(v1::Instrumentation::Seen) => Some(Self::Seen),
            Ok(v1::Instrumentation::Waiting) => Some(Self::Waiting),
            Ok(v1::Instrumentation::Missing) => Some(Self::Missing),
            Ok(v1::Instrumentation::Filtered) => Some(Self::Filtered),
            Ok(v1::Instrumentation::Unknown) | Err(_) => None,
        }
    }
}

/// How the stream ended, as far as the model knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Still streaming.
    Open,
    /// The probe said the process exited normally.
    Exited,
    /// The stream stopped without that word: the process was killed, the recording was cut,
    /// or the connection was lost. What the model holds is all there is.
    Cut,
}

/// The state of one process.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    process: Option<v1::ProcessInfo>,
    instrumentation: Instrumentation,
    /// Probe time of the latest update.
    now_ns: u64,
    /// Probe time of the first update of the current stream (the start of the window).
    since_ns: Option<u64>,
    tasks: HashMap<u64, Task>,
    stalls: HashMap<u64, Stall>,
    runtime: Runtime,
    drops: v1::Drops,
    locations: Vec<Box<str>>,
    location_ids: HashMap<Box<str>, LocationId>,
    growth: Growth,
    waiting: Waiting,
    wait_graph: WaitGraph,
    ending: Ending,
    /// Runtimes that shut down with tasks alive, counted where tasks are not seen one by
    /// one (built without `--cfg tokio_unstable`).
    alive_at_shutdown: Vec<v1::AliveAtShutdown>,
    /// Every recorded thread's last seconds, in the probe's buckets.
    activity: Activity,
    /// Short-lived tasks the probe counted by spawn site instead of one by one (all
    /// completed): each site's whole tally, as last sent.
    folded: HashMap<LocationId, Folded>,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    pub(crate) fn new() -> Self {
        Self {
            process: None,
            instrumentation: Instrumentation::Unknown,
            now_ns: 0,
            since_ns: None,
            tasks: HashMap::new(),
            stalls: HashMap::new(),
            runtime: Runtime::default(),
            drops: v1::Drops::default(),
            locations: Vec::new(),
            location_ids: HashMap::new(),
            growth: Growth::default(),
            waiting: Waiting::default(),
            wait_graph: WaitGraph::default(),
            ending: Ending::Open,
            alive_at_shutdown: Vec::new(),
            activity: Activity::default(),
            folded: HashMap::new(),
        }
    }

    /// Folds one update in. Within an update, spawns come before statistics, statistics
    /// before ends, so one update can announce, describe and end the same short task.
    pub(crate) fn apply(&mut self, update: &v1::Update) {
        if matches!(
            v1::SnapshotMark::try_from(update.snapshot),
            Ok(v1::SnapshotMark::SnapshotFirst | v1::SnapshotMark::SnapshotOnly)
        ) {
            // A fresh stream (or a reconnect): its snapshot replaces everything we knew but
            // the interned locations, so that an id the dashboard holds (a spawn site's
            // row, its details) still names the same site.
            let locations = std::mem::take(&mut self.locations);
            let location_ids = std::mem::take(&mut self.location_ids);
            *self = Self::new();
            self.locations = locations;
            self.location_ids = location_ids;
        }
        self.now_ns = self.now_ns.max(update.now_ns);
        self.since_ns.get_or_insert(update.now_ns);
        if let Some(process) = &update.process {
            if let Some(seen) = Instrumentation::from_wire(process.instrumentation) {
                self.instrumentation = seen;
            }
            self.process = Some(process.clone());
            self.runtime.threads_unavailable = process.source == v1::SourceKind::Console as i32;
            self.runtime.blocking_unobserved = process.route == v1::Route::Hooks as i32;
            self.activity.set_bucket_ns(process.activity_bucket_ns);
        }
        if let Some(seen) = Instrumentation::from_wire(update.instrumentation) {
            self.instrumentation = seen;
        }
        if let Some(runtime) = &update.runtime {
            self.runtime.apply(runtime);
        }
        if let Some(drops) = update.drops {
            self.drops = drops;
        }
        for spawned in &update.spawned {
            self.spawned(spawned);
        }
        for stats in &update.stats {
            self.with_task(stats.id, |task| task.stats = Stats::from_wire(stats));
        }
        for ended in &update.ended {
            self.with_task(ended.id, |task| {
                if let Some(stats) = &ended.stats {
                    task.stats = Stats::from_wire(stats);
                }
                task.end = Some(Box::new(End::from_wire(ended)));
            });
        }
        for folded in &update.folded {
            // The site's whole tally: it replaces what was known.
            let site = self.site_of(folded.location.as_ref());
            self.folded.insert(site, Folded::from_wire(folded));
        }
        for stall in &update.stalls {
            self.stalls
                .entry(stall.stall_id)
                .and_modify(|known| known.update(stall))
                .or_insert_with(|| Stall::from_wire(stall));
        }
        for dump in &update.dumps {
            self.waiting.apply(dump);
        }
        if let Some(graph) = &update.wait_graph {
            self.wait_graph.replace(graph);
        }
        self.wait_graph.settle(self.now_ns, &self.tasks);
        for alive in &update.alive_at_shutdown {
            // A snapshot repeats the counts a stream already had.
            if !self.alive_at_shutdown.contains(alive) {
                self.alive_at_shutdown.push(alive.clone());
            }
        }
        self.activity.apply(&update.activity, self.now_ns);
        if update.process_exited {
            self.ending = Ending::Exited;
        }
    }

    /// Marks the end of the stream: unless the process said it exited, it was cut.
    pub(crate) fn finish(&mut self) {
        if self.ending == Ending::Open {
            self.ending = Ending::Cut;
        }
    }

    /// The interned `file:line:col` of a spawn site as the wire names it.
    fn site_of(&mut self, location: Option<&v1::Location>) -> LocationId {
        match location {
            Some(l) if !l.file.is_empty() => {
                self.intern(&format!("{}:{}:{}", l.file, l.line, l.column))
            }
            _ => self.intern(UNKNOWN_LOCATION),
        }
    }

    fn spawned(&mut self, spawned: &v1::TaskSpawned) {
        let location = self.site_of(spawned.location.as_ref());
        // A task may already be known from its statistics or end when its spawn was
        // announced late: keep those, fill in who it is.
        self.with_task(spawned.id, |task| {
            let known = Task::from_wire(spawned, location);
            task.name = known.name;
            task.kind = known.kind;
            task.location = known.location;
            task.parent_id = known.parent_id;
            task.spawned_ns = known.spawned_ns;
            task.spawn_thread = known.spawn_thread;
            task.runtime_id = known.runtime_id;
        });
    }

    /// Changes a task (creating a placeholder for one the probe never announced, so that it
    /// stays visible) and keeps the per-site live counts right.
    fn with_task(&mut self, id: u64, change: impl FnOnce(&mut Task)) {
        let unknown = self.intern(UNKNOWN_LOCATION);
        let task = self.tasks.entry(id).or_insert_with(|| Task {
            id,
            name: None,
            kind: Kind::Unknown,
            location: unknown,
            parent_id: 0,
            spawned_ns: 0,
            spawn_thread: 0,
            runtime_id: 0,
            stats: Stats::default(),
            end: None,
        });
        let before = counted_site(task);
        change(task);
        let after = counted_site(task);
        if before != after {
            if let Some(site) = before {
                self.growth.leave(site, self.now_ns);
            }
            if let Some(site) = after {
                self.growth.enter(site, self.now_ns);
            }
        }
    }

    fn intern(&mut self, location: &str) -> LocationId {
        if let Some(&id) = self.location_ids.get(location) {
            return id;
        }
        let id = LocationId(self.locations.len() as u32);
        self.locations.push(location.into());
        self.location_ids.insert(location.into(), id);
        id
    }

    pub(crate) fn process(&self) -> Option<&v1::ProcessInfo> {
        self.process.as_ref()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, |p| p.pid)
    }

    pub(crate) fn program(&self) -> &str {
        self.process.as_ref().map_or("", |p| p.program.as_str())
    }

    /// What the probe could see in this process (its build and route).
    pub(crate) fn capability(&self) -> v1::Capability {
        self.process
            .as_ref()
            .and_then(|p| v1::Capability::try_from(p.capability).ok())
            .unwrap_or(v1::Capability::Unknown)
    }

    /// Whether the probe saw runtime workers but not tasks: built without
    /// `--cfg tokio_unstable`, under the macros.
    pub(crate) fn sees_workers_only(&self) -> bool {
        self.capability() == v1::Capability::Workers
    }

    /// Runtimes that shut down with tasks alive, as counted where tasks are not seen.
    pub(crate) fn alive_at_shutdown(&self) -> &[v1::AliveAtShutdown] {
        &self.alive_at_shutdown
    }

    pub(crate) fn instrumentation(&self) -> Instrumentation {
        self.instrumentation
    }

    /// Whether the facts come from a console-subscriber target, translated by the client:
    /// then stall stacks, outcomes, parents and threads are not missing but unavailable.
    pub(crate) fn is_console_target(&self) -> bool {
        self.process
            .as_ref()
            .is_some_and(|p| p.source == v1::SourceKind::Console as i32)
    }

    /// Whether the probe tracked wakers (without it, lost wakers cannot be told apart).
    pub(crate) fn waker_tracking(&self) -> bool {
        self.process.as_ref().is_some_and(|p| p.waker_tracking)
    }

    pub(crate) fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Probe time of the first update seen: where the observation window starts.
    pub(crate) fn since_ns(&self) -> u64 {
        self.since_ns.unwrap_or(0)
    }

    pub(crate) fn ending(&self) -> Ending {
        self.ending
    }

    pub(crate) fn task(&self, id: u64) -> Option<&Task> {
        self.tasks.get(&id)
    }

    /// Every task, in no particular order.
    pub(crate) fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    #[allow(
        dead_code,
        reason = "read API the dashboard renders from; check does not need it"
    )]
    pub(crate) fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// How many tasks the probe counted by site instead of one by one.
    pub(crate) fn folded_tasks(&self) -> u64 {
        (self.folded.values()).fold(0, |total, f| total.saturating_add(f.tasks))
    }

    /// Every spawn site's tally of tasks counted by site, in no particular order.
    pub(crate) fn folded(&self) -> impl Iterator<Item = (LocationId, &Folded)> {
        self.folded.iter().map(|(&site, tally)| (site, tally))
    }

    /// The tally of tasks counted at `site`, if the probe counted any there.
    pub(crate) fn folded_at(&self, site: LocationId) -> Option<&Folded> {
        self.folded.get(&site)
    }

    /// Every stall, in no particular order.
    pub(crate) fn stalls(&self) -> impl Iterator<Item = &Stall> {
        self.stalls.values()
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub(crate) fn drops(&self) -> &v1::Drops {
        &self.drops
    }

    /// Where tasks were waiting, as far as the dumps said.
    pub(crate) fn waiting(&self) -> &Waiting {
        &self.waiting
    }

    /// Who waits on whom, and the cycles seen in it.
    pub(crate) fn wait_graph(&self) -> &WaitGraph {
        &self.wait_graph
    }

    /// Why holders of locks and permits are not seen in this process, when they are not.
    pub(crate) fn holders_unavailable(&self) -> Option<&str> {
        self.process
            .as_ref()
            .map(|p| p.holders_unavailable.as_str())
            .filter(|why| !why.is_empty())
    }

    /// Every recorded thread's last seconds.
    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }

    pub(crate) fn growth(&self) -> &Growth {
        &self.growth
    }

    /// The `file:line:col` an id stands for.
    pub(crate) fn location(&self, id: LocationId) -> &str {
        self.locations
            .get(id.0 as usize)
            .map_or(UNKNOWN_LOCATION, |l| l)
    }
}

/// The site a task counts towards in the live-per-site numbers, if it counts: a runtime's
/// `block_on` future is not something that can pile up.
fn counted_site(task: &Task) -> Option<LocationId> {
    (task.is_live() && task.kind != Kind::BlockOn).then_some(task.location)
}

#[cfg(test)]
mod tests;
