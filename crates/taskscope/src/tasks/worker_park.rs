//! Whether each runtime worker is parked, as tokio's thread hooks say it: the one fact
//! about a worker that plain stable tokio (built without `--cfg tokio_unstable`) gives
//! the probe, with no task hooks and no task spans.
//!
//! `on_thread_park` and `on_thread_unpark` run on the worker itself, once per park and
//! wake, never per poll: each is two plain stores into the worker's own state (a single
//! writer, so no locked read-modify-write). The watchdog (`detect/worker_watch.rs`) reads
//! them. A thread is taken in at its first park: blocking-pool threads, which never park
//! through these hooks, are never mistaken for workers.

use std::cell::OnceCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::tasks::threads::{self, ThreadSlot};

/// One worker's park state, written by the worker's own hooks.
#[derive(Debug, Default)]
pub(crate) struct WorkerPark {
    parked: AtomicBool,
    /// Parks so far: a look that finds it unchanged knows the worker never parked between.
    parks: AtomicU64,
}

impl WorkerPark {
    pub(crate) fn is_parked(&self) -> bool {
        self.parked.load(Ordering::Acquire)
    }

    pub(crate) fn parks(&self) -> u64 {
        self.parks.load(Ordering::Acquire)
    }
}

/// A worker as the watchdog takes it in.
pub(crate) struct Worker {
    pub(crate) slot: Arc<ThreadSlot>,
    pub(crate) park: Arc<WorkerPark>,
}

/// Workers seen parking for the first time, not yet taken up by the watchdog. Global
/// because tokio's thread hooks carry no context to reach the probe through.
static NEW_WORKERS: Mutex<Vec<Worker>> = Mutex::new(Vec::new());

thread_local! {
    static PARK: OnceCell<Arc<WorkerPark>> = const { OnceCell::new() };
}

/// `on_thread_park`: the worker goes idle.
#[cfg_attr(tokio_unstable, allow(dead_code))] // the task hooks see polls there
pub(crate) fn parking() {
    let _ = PARK.try_with(|park| {
        let park = park.get_or_init(register);
        // Single writer: this thread.
        park.parks
            .store(park.parks.load(Ordering::Relaxed) + 1, Ordering::Release);
        park.parked.store(true, Ordering::Release);
    });
}

/// `on_thread_unpark`: the worker is back to run tasks.
#[cfg_attr(tokio_unstable, allow(dead_code))]
pub(crate) fn unparked() {
    let _ = PARK.try_with(|park| {
        if let Some(park) = park.get() {
            park.parked.store(false, Ordering::Release);
        }
    });
}

#[cfg_attr(tokio_unstable, allow(dead_code))]
fn register() -> Arc<WorkerPark> {
    let park = Arc::new(WorkerPark::default());
    // Register the thread's slot (its name, OS id and sampling target) now, off any poll.
    if let Some(slot) = threads::with_local(|local| local.thread_slot()) {
        NEW_WORKERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Worker {
                slot,
                park: park.clone(),
            });
    }
    park
}

/// The workers that parked for the first time since the last call.
pub(crate) fn take_new() -> Vec<Worker> {
    std::mem::take(&mut *NEW_WORKERS.lock().unwrap_or_else(|e| e.into_inner()))
}
