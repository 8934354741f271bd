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
//!
//! A worker that parked once and slept while the others worked (the second worker of a
//! quiet runtime, woken for the first time by a task that then computes) leaves its hooks
//! no vote to win: every other worker's count moved during its sleep too. The watchdog
//! narrows that thread's index down from outside instead ([`WorkerPark::narrow`]): tokio
//! counts a worker's parks and wakes together (`worker_park_unpark_count`), submitting the
//! count odd as it parks, after `on_thread_park`, and even as it wakes, before
//! `on_thread_unpark`; so while the thread's hooks say it is awake, its own worker's
//! submitted count is even, and every worker whose count is odd then is another worker,
//! asleep.

use std::cell::{OnceCell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
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
    /// Its index among the runtime's workers, once its parks found it ([`UNKNOWN`] until
    /// then).
    index: AtomicUsize,
    /// Written by the watchdog only ([`WorkerPark::narrow`]): the workers of its runtime
    /// it cannot be, one bit each, each seen asleep while this thread was awake.
    excluded: AtomicU64,
    /// The one worker left when all the others were excluded ([`UNKNOWN`] until then).
    narrowed: AtomicUsize,
}

/// Most workers [`WorkerPark::narrow`] keeps a bit for.
const MAX_NARROWED: usize = u64::BITS as usize;

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

    /// Its index among its runtime's workers: as its parks found it, unless the watchdog
    /// has since seen that worker asleep while this thread was awake (a vote gone wrong),
    /// or else as the watchdog narrowed it down; [`UNKNOWN`] when neither knows.
    fn index(&self) -> usize {
        let found = self.index.load(Ordering::Acquire);
        let excluded = self.excluded.load(Ordering::Relaxed);
        if found < MAX_NARROWED && excluded & (1 << found) == 0 {
            return found;
        }
        self.narrowed.load(Ordering::Relaxed)
    }

    /// Called by the watchdog only, at each look at the worker: the workers of its runtime
    /// whose submitted park-and-wake count is odd (asleep) while this thread's hooks say it
    /// is awake, from before the read to after it, are not its worker. Once one worker is
    /// left, that is the thread's. When none is left, the thread is no longer the worker
    /// it was (`block_in_place` hands a worker to another thread), and narrowing starts
    /// again from this look.
    pub(crate) fn narrow(&self) {
        let Some(metrics) = self.metrics.get() else {
            return;
        };
        let workers = metrics.num_workers();
        if workers > MAX_NARROWED || self.is_parked() {
            return;
        }
        let parks = self.parks();
        let asleep = (0..workers)
            .filter(|&worker| metrics.worker_park_unpark_count(worker) % 2 == 1)
            .fold(0u64, |asleep, worker| asleep | 1 << worker);
        // Pairs with the fence in `parking`: a count tokio made odd after this thread's
        // next `on_thread_park` brings that park's count with it.
        fence(Ordering::Acquire);
        if self.is_parked() || self.parks() != parks {
            return;
        }
        let excluded = self.excluded.load(Ordering::Relaxed);
        let (excluded, narrowed) = narrowed(excluded | asleep, asleep, workers);
        self.excluded.store(excluded, Ordering::Relaxed);
        self.narrowed
            .store(narrowed.unwrap_or(UNKNOWN), Ordering::Relaxed);
    }

    /// The worker's submitted metrics; `None` while its index is not known.
    pub(crate) fn submitted(&self) -> Option<Submitted> {
        let index = self.index();
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
        // tokio's own stores that follow (the park count made odd) are seen with these,
        // so `WorkerPark::narrow` never takes this worker for another one asleep.
        fence(Ordering::Release);
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
        narrowed: AtomicUsize::new(UNKNOWN),
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

/// The workers a thread cannot be (`excluded`, with this look's `asleep` among them), out
/// of `workers`, and the thread's own when one alone is left. With none left, only this
/// look's `asleep` stand.
fn narrowed(excluded: u64, asleep: u64, workers: usize) -> (u64, Option<usize>) {
    let all = u64::MAX >> (MAX_NARROWED - workers.clamp(1, MAX_NARROWED));
    let excluded = if excluded & all == all {
        asleep
    } else {
        excluded
    };
    let left = all & !excluded;
    let one = (left.count_ones() == 1).then(|| left.trailing_zeros() as usize);
    (excluded, one)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_worker_never_seen_asleep_while_the_thread_was_awake_is_its_own() {
        assert_eq!(narrowed(0b00, 0b00, 2), (0b00, None));
        assert_eq!(narrowed(0b01, 0b01, 2), (0b01, Some(1)));
        assert_eq!(narrowed(0b001, 0b001, 3), (0b001, None));
        assert_eq!(narrowed(0b101, 0b100, 3), (0b101, Some(1)));
        assert_eq!(narrowed(0, 0, 1), (0, Some(0)));
    }

    /// A runtime whose two workers parked once at its start; one is woken by a task that
    /// computes until told to stop, the other sleeps on. The computing worker's own parks
    /// cannot have told which worker it is; looks from outside narrow it down to the
    /// one tokio says runs the task.
    #[test]
    fn looks_from_outside_find_a_worker_that_parked_only_once() {
        use std::sync::atomic::AtomicBool;
        use std::time::{Duration, Instant};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .on_thread_park(parking)
            .on_thread_unpark(unparked)
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while (0..2).any(|w| runtime.metrics().worker_park_count(w) == 0) {
            assert!(Instant::now() < deadline, "both workers park");
            std::thread::sleep(Duration::from_millis(5));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, computing) = std::sync::mpsc::channel();
        let spinning = stop.clone();
        runtime.spawn(async move {
            let park = PARK
                .with(|park| park.get().cloned())
                .expect("parked before");
            sender
                .send((tokio::runtime::worker_index().unwrap(), park))
                .unwrap();
            while !spinning.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        let (index, park) = computing.recv().unwrap();
        let narrowed = loop {
            park.narrow();
            let narrowed = park.narrowed.load(Ordering::Relaxed);
            if narrowed != UNKNOWN || Instant::now() > deadline {
                break narrowed;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        stop.store(true, Ordering::Relaxed);
        assert_eq!(narrowed, index);
        assert_eq!(park.submitted().map(|_| park.index()), Some(index));
    }

    #[test]
    fn a_thread_seen_to_be_none_of_its_workers_starts_again() {
        assert_eq!(narrowed(0b11, 0b01, 2), (0b01, Some(1)));
        assert_eq!(narrowed(0b11, 0b11, 2), (0b11, None));
    }
}
