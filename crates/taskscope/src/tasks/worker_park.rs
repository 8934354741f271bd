//! Whether each runtime worker is parked, as tokio's thread hooks say it: the one fact
//! about a worker that plain stable tokio (built without `--cfg tokio_unstable`) gives
//! the probe, with no task hooks and no task spans.
//!
//! `on_thread_park` and `on_thread_unpark` run on the worker itself, once per park and
//! wake, never per poll: each is a few plain stores into the worker's own state (a single
//! writer, so no locked read-modify-write), and a load of each worker's park count to find
//! which worker of its runtime the thread is (`worker_index.rs`). The watchdog
//! (`detect/worker_watch.rs`) reads them, with the runtime's stable metrics of that
//! worker. A thread is taken in at its first park: blocking-pool threads, which never park
//! through these hooks, are never mistaken for workers.

use std::cell::{OnceCell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::runtime::RuntimeMetrics;

use crate::base::clock;
use crate::tasks::threads::{self, ThreadSlot};
use crate::tasks::worker_index::Finder;

/// `WorkerPark::index` while the worker's index is not known.
const UNKNOWN: usize = usize::MAX;

/// One worker's park state, written by the worker's own hooks.
#[derive(Debug, Default)]
pub(crate) struct WorkerPark {
    parked: AtomicBool,
    /// Parks so far: a look that finds it unchanged knows the worker never parked between.
    parks: AtomicU64,
    /// Probe time of its last park or wake.
    since_ns: AtomicU64,
    /// Its runtime's metrics, when the thread's first park found the runtime.
    metrics: OnceLock<RuntimeMetrics>,
    /// Its index among the runtime's workers, once known ([`UNKNOWN`] until then).
    index: AtomicUsize,
}

/// What tokio last submitted of a worker's metrics: it submits them every
/// `event_interval` scheduler ticks (61 by default) and when the worker parks, so they do
/// not move while the worker is inside one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Submitted {
    pub(crate) busy_ns: u64,
    pub(crate) parks: u64,
    pub(crate) parks_and_wakes: u64,
}

impl WorkerPark {
    /// Probe time of its last park (when parked) or wake (when not).
    pub(crate) fn since_ns(&self) -> u64 {
        self.since_ns.load(Ordering::Acquire)
    }

    /// The worker's submitted metrics; `None` while its index is not known.
    pub(crate) fn submitted(&self) -> Option<Submitted> {
        let index = self.index.load(Ordering::Acquire);
        let metrics = self.metrics.get()?;
        (index < metrics.num_workers()).then(|| Submitted {
            busy_ns: metrics.worker_total_busy_duration(index).as_nanos() as u64,
            parks: metrics.worker_park_count(index),
            parks_and_wakes: metrics.worker_park_unpark_count(index),
        })
    }

    pub(crate) fn is_parked(&self) -> bool {
        self.parked.load(Ordering::Acquire)
    }

    pub(crate) fn parks(&self) -> u64 {
        self.parks.load(Ordering::Acquire)
    }
}

/// A worker as the watchdog takes it in.
#[derive(Clone)]
pub(crate) struct Worker {
    pub(crate) slot: Arc<ThreadSlot>,
    pub(crate) park: Arc<WorkerPark>,
}

/// Workers seen parking for the first time, not yet taken up by the watchdog. Global
/// because tokio's thread hooks carry no context to reach the probe through.
static NEW_WORKERS: Mutex<Vec<Worker>> = Mutex::new(Vec::new());
/// Every worker alive, for the state published each interval (`aggregate/`).
static WORKERS: Mutex<Vec<Worker>> = Mutex::new(Vec::new());

thread_local! {
    static PARK: OnceCell<Arc<WorkerPark>> = const { OnceCell::new() };
    static FINDER: RefCell<Option<Finder>> = const { RefCell::new(None) };
}

/// `on_thread_park`: the worker goes idle.
#[cfg_attr(tokio_unstable, allow(dead_code))] // the task hooks see polls there
pub(crate) fn parking() {
    let _ = PARK.try_with(|park| {
        let park = park.get_or_init(register);
        // Single writer: this thread.
        park.parks
            .store(park.parks.load(Ordering::Relaxed) + 1, Ordering::Release);
        park.since_ns.store(clock::now_ns(), Ordering::Release);
        park.parked.store(true, Ordering::Release);
    });
    let _ = FINDER.try_with(|finder| {
        if let Some(finder) = finder.borrow_mut().as_mut() {
            finder.parking();
        }
    });
}

/// `on_thread_unpark`: the worker is back to run tasks.
#[cfg_attr(tokio_unstable, allow(dead_code))]
pub(crate) fn unparked() {
    let _ = PARK.try_with(|park| {
        let Some(park) = park.get() else { return };
        park.since_ns.store(clock::now_ns(), Ordering::Release);
        park.parked.store(false, Ordering::Release);
        let _ = FINDER.try_with(|finder| {
            let found = finder.borrow_mut().as_mut().and_then(Finder::unparked);
            park.index
                .store(found.unwrap_or(UNKNOWN), Ordering::Release);
        });
    });
}

#[cfg_attr(tokio_unstable, allow(dead_code))]
fn register() -> Arc<WorkerPark> {
    let park = Arc::new(WorkerPark {
        index: AtomicUsize::new(UNKNOWN),
        ..WorkerPark::default()
    });
    // The hooks run inside the runtime: its handle is this thread's.
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let metrics = handle.metrics();
        let _ = park.metrics.set(metrics.clone());
        let _ = FINDER.try_with(|finder| {
            if let Some(mut found) = Finder::new(metrics) {
                found.parking();
                *finder.borrow_mut() = Some(found);
            }
        });
    }
    // Register the thread's slot (its name, OS id and sampling target) now, off any poll.
    if let Some(slot) = threads::with_local(|local| local.thread_slot()) {
        let worker = Worker {
            slot,
            park: park.clone(),
        };
        let lock =
            |list: &'static Mutex<Vec<Worker>>| list.lock().unwrap_or_else(|e| e.into_inner());
        lock(&WORKERS).push(worker.clone());
        lock(&NEW_WORKERS).push(worker);
    }
    park
}

/// The workers that parked for the first time since the last call.
pub(crate) fn take_new() -> Vec<Worker> {
    std::mem::take(&mut *NEW_WORKERS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The workers alive now (those whose thread exited are forgotten).
pub(crate) fn all() -> Vec<Worker> {
    let mut workers = WORKERS.lock().unwrap_or_else(|e| e.into_inner());
    workers.retain(|worker| !worker.slot.has_exited());
    workers.clone()
}
