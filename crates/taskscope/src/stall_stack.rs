//! Capturing the stack of a stalled thread, while it is stalled.
//!
//! The sampling itself lives in the `taskscope-stack` crate; this module decides *when*
//! to sample (when a stall is first seen, then at 2x and 4x the threshold, so that the
//! report can tell a blocked thread from a busy one) and turns samples into protocol
//! frames.

use std::sync::Arc;

use taskscope_api::v1;

use crate::shared::Shared;
use crate::threads::{Polling, ThreadSlot};

/// Where a sampler can reach a thread.
#[derive(Debug, Clone)]
pub(crate) struct Target;

impl Target {
    /// The calling thread, when the platform supports sampling it.
    pub(crate) fn current() -> Option<Self> {
        None
    }
}

/// The stack sampler, when this platform and build can capture stacks safely.
pub(crate) struct Capture;

impl Capture {
    pub(crate) fn new(shared: &Arc<Shared>) -> Option<Self> {
        let mut state = shared
            .stack_capture
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        state.enabled = false;
        state.unavailable_reason = "stack capture is not available in this build".into();
        None
    }
}

/// When to sample one stall.
pub(crate) struct Schedule {
    taken: u32,
    threshold_ns: u64,
}

impl Schedule {
    pub(crate) fn new(threshold_ns: u64) -> Self {
        Self {
            taken: 0,
            threshold_ns,
        }
    }

    /// Samples due now (at 1x, 2x and 4x the threshold into the poll).
    pub(crate) fn sample_due(
        &mut self,
        _capture: &Capture,
        _slot: &ThreadSlot,
        polling: Polling,
        now_ns: u64,
    ) -> Vec<v1::StackSample> {
        let elapsed = now_ns.saturating_sub(polling.started_ns);
        let due = match self.taken {
            0 => true,
            1 => elapsed >= 2 * self.threshold_ns,
            2 => elapsed >= 4 * self.threshold_ns,
            _ => false,
        };
        if due {
            self.taken += 1;
        }
        Vec::new()
    }
}
