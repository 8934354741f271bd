//! The watchdog: notices a poll that has held its thread past the stall threshold while
//! that poll is still running.
//!
//! It is a plain OS thread, not a task, so that it keeps running when every runtime
//! thread of the app is stuck, and it only reads the threads' slots: the app's threads
//! never wait for it. It scans often enough to report a stall within a quarter of the
//! threshold (at most 25 ms) after it crosses it, then refreshes it every publish interval
//! until the poll returns (the polling thread itself reports the exact final duration).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::shared::{ProbeEvent, Shared};
use crate::threads::Polling;
use crate::{clock, quiet, stall_stack, threads};

/// A stall the watchdog is following.
struct Followed {
    polling: Polling,
    last_report_ns: u64,
    sampler: stall_stack::Schedule,
}

pub(crate) struct Watchdog {
    shared: Arc<Shared>,
    period: Duration,
    followed: HashMap<u32, Followed>,
    stacks: Option<stall_stack::Capture>,
}

pub(crate) fn start(shared: Arc<Shared>, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    let threshold = shared.config.stall_threshold;
    let period = (threshold / 4).clamp(Duration::from_millis(1), Duration::from_millis(25));
    let stacks = stall_stack::Capture::new(&shared);
    let mut watchdog = Watchdog {
        shared,
        period,
        followed: HashMap::new(),
        stacks,
    };
    std::thread::Builder::new()
        .name("taskscope-watchdog".into())
        .spawn(move || {
            quiet::quiet_forever();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(watchdog.period);
                watchdog.scan();
            }
        })?;
    Ok(())
}

impl Watchdog {
    fn scan(&mut self) {
        let now = clock::now_ns();
        let threshold = self.shared.threshold_ns;
        let publish_ns = self.shared.config.publish_interval.as_nanos() as u64;
        let mut still_stalled = Vec::new();
        for slot in threads::all() {
            if slot.has_exited() {
                continue;
            }
            let Some(polling) = slot.read() else { continue };
            let elapsed = now.saturating_sub(polling.started_ns);
            if elapsed < threshold {
                continue;
            }
            still_stalled.push(slot.number);
            let followed = self.followed.get_mut(&slot.number);
            let is_new = followed.as_ref().is_none_or(|f| f.polling != polling);
            if is_new {
                self.followed.insert(
                    slot.number,
                    Followed {
                        polling,
                        last_report_ns: 0,
                        sampler: stall_stack::Schedule::new(threshold),
                    },
                );
            }
            let followed = self.followed.get_mut(&slot.number).expect("just inserted");
            let samples = match &self.stacks {
                Some(capture) => followed.sampler.sample_due(capture, &slot, polling, now),
                None => Vec::new(),
            };
            let report_due = now.saturating_sub(followed.last_report_ns) >= publish_ns;
            if is_new || report_due || !samples.is_empty() {
                followed.last_report_ns = now;
                let sent = self.shared.send(ProbeEvent::StallRunning {
                    thread: slot.number,
                    task: polling.task,
                    started_ns: polling.started_ns,
                    now_ns: now,
                    samples,
                });
                if sent {
                    self.shared.urgent.notify_one();
                } else {
                    self.shared
                        .drops
                        .stall_events
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.followed
            .retain(|number, _| still_stalled.contains(number));
    }
}
