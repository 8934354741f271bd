//! A stall being followed while it happens: the one way every watcher (the watchdog's
//! thread slots, a `block_on` body watched from outside, a stable tokio worker) tells the
//! app's clients about a stall that is still running.
//!
//! The first report goes out at once, then one every publish interval, so that a client
//! sees its duration grow; the stack is sampled when the schedule says so
//! (`stall_stack.rs`), each time after the report, so that capturing never delays the news.

use crate::detect::stall_stack;
use crate::tasks::shared::Shared;
use crate::tasks::threads::{Polling, ThreadSlot};

/// One stall past the threshold, reported while it lasts.
pub(crate) struct RunningStall {
    /// When it was last reported; `None` until its first report.
    last_report_ns: Option<u64>,
    schedule: stall_stack::Schedule,
}

impl RunningStall {
    pub(crate) fn new(threshold_ns: u64) -> Self {
        Self {
            last_report_ns: None,
            schedule: stall_stack::Schedule::new(threshold_ns),
        }
    }

    /// Reports the stall of `polling` on `slot`'s thread if it is new or a publish
    /// interval has passed since its last report, then samples its stack if due.
    pub(crate) fn follow(
        &mut self,
        shared: &Shared,
        slot: &ThreadSlot,
        polling: Polling,
        now_ns: u64,
        capture: Option<&stall_stack::Capture>,
    ) {
        let publish_ns = shared.config.publish_interval.as_nanos() as u64;
        if self.last_report_ns.is_none() {
            // What the thread did just before must still be there when its window is cut.
            (shared.flight).hold_before(slot.number, polling.started_ns);
        }
        if self
            .last_report_ns
            .is_none_or(|last| now_ns.saturating_sub(last) >= publish_ns)
        {
            self.last_report_ns = Some(now_ns);
            shared.report_stall_running(slot.number, polling, now_ns);
        }
        if let (Some(capture), Some(target)) = (capture, slot.target.as_ref()) {
            self.schedule
                .sample_if_due(capture, slot.number, target, polling, now_ns);
        }
    }
}
