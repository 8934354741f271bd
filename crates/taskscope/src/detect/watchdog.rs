//! The watchdog: notices a poll that has held its thread past the stall threshold while
//! that poll is still running.
//!
//! It is a plain OS thread, not a task, so that it keeps running when every runtime
//! thread of the app is stuck, and it only reads the threads' slots: the app's threads
//! never wait for it. It scans often enough to report a stall within a quarter of the
//! threshold (at most 25 ms) after it crosses it, then refreshes it every publish interval
//! until the poll returns (the polling thread itself reports the exact final duration).
//! Each report goes out before that stall's stack is sampled, and symbolizing happens on
//! another thread, so capturing stacks never delays the news that a stall started.
//! Each scan also reads the polling threads' scheduler totals (`schedstat.rs`), so that a
//! stall's time spent waiting for a CPU is measured from its poll's start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::base::schedstat;
use crate::base::{clock, quiet};
use crate::detect::running_stall::RunningStall;
use crate::detect::{body_watch, stall_stack, worker_watch};
use crate::tasks::shared::Shared;
use crate::tasks::threads;
use crate::tasks::threads::Polling;

/// A stall the watchdog is following.
struct Followed {
    polling: Polling,
    running: RunningStall,
}

pub(crate) struct Watchdog {
    shared: Arc<Shared>,
    period: Duration,
    followed: HashMap<u32, Followed>,
    capture: Option<stall_stack::Capture>,
    /// `block_on` bodies no poll marks, watched from outside (`body_watch.rs`).
    bodies: body_watch::Bodies,
    /// Runtime workers on stable tokio, where no poll is marked (`worker_watch.rs`).
    workers: worker_watch::Workers,
    sampler: schedstat::Sampler,
}

/// Starts the watchdog's thread, which runs until the probe is stopped.
pub(crate) fn start(
    shared: Arc<Shared>,
    capture: Option<stall_stack::Capture>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let threshold = shared.config.stall_threshold;
    let period = (threshold / 4).clamp(Duration::from_millis(1), Duration::from_millis(25));
    let mut watchdog = Watchdog {
        shared,
        period,
        followed: HashMap::new(),
        capture,
        bodies: body_watch::Bodies::default(),
        workers: worker_watch::Workers::default(),
        sampler: schedstat::Sampler::default(),
    };
    std::thread::Builder::new()
        .name("taskscope-watchdog".into())
        .spawn(move || {
            quiet::quiet_forever();
            while !watchdog.shared.is_stopped() {
                std::thread::sleep(watchdog.period);
                watchdog.scan();
            }
        })
}

impl Watchdog {
    fn scan(&mut self) {
        let threshold = self.shared.threshold_ns;
        let mut stalled_threads = Vec::new();
        let mut exited_threads = Vec::new();
        for slot in threads::all() {
            if slot.has_exited() {
                exited_threads.push(slot.number);
                continue;
            }
            let polling = slot.read();
            let now = clock::now_ns();
            let since = polling.map(|p| p.started_ns);
            let starts = &self.shared.poll_starts;
            (self.sampler).sample(slot.number, slot.os_tid, since, now, starts);
            let Some(polling) = polling else { continue };
            if now.saturating_sub(polling.started_ns) < threshold {
                continue;
            }
            stalled_threads.push(slot.number);
            let is_new = self
                .followed
                .get(&slot.number)
                .is_none_or(|f| f.polling != polling);
            if is_new {
                self.followed.insert(
                    slot.number,
                    Followed {
                        polling,
                        running: RunningStall::new(threshold),
                    },
                );
            }
            let followed = self.followed.get_mut(&slot.number).expect("just inserted");
            let capture = self.capture.as_ref();
            (followed.running).follow(&self.shared, &slot, polling, now, capture);
        }
        self.followed
            .retain(|number, _| stalled_threads.contains(number));
        self.sampler
            .forget(|number| exited_threads.contains(&number));
        self.bodies.scan(&self.shared, self.capture.as_ref());
        // Often enough that a busy thread's ring rarely fills (`tasks/flight.rs`).
        self.shared.flight.drain(&threads::all());
        self.workers.scan(&self.shared, self.capture.as_ref());
    }
}
