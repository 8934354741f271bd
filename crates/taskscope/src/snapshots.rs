//! `Snapshot` calls, answered from a recent snapshot rather than a new one each time, and
//! rate-limited: building a snapshot of a large app takes the probe's thread a while, and
//! a client calling in a loop kept it at 73-96% of a core.
//!
//! Pages of one snapshot now come from the same state, which they did not when each call
//! built its own.

use std::time::{Duration, Instant};

use taskscope_api::v1;
use tonic::Status;

use crate::aggregator::Aggregator;

/// A snapshot is rebuilt for a call at most this often.
const REFRESH: Duration = Duration::from_secs(1);
/// A snapshot nobody asked for in this long is let go (it can hold megabytes).
const KEEP: Duration = Duration::from_secs(5);
/// `Snapshot` calls answered per second, by all clients together...
pub(crate) const CALLS_PER_SECOND: u32 = 20;

/// The last snapshot built for a call, and the call budget.
pub(crate) struct Snapshots {
    pages: Vec<v1::Update>,
    built: Option<Instant>,
    last_call: Instant,
    /// Calls left in the current second, and when it started.
    budget: u32,
    second: Instant,
}

impl Snapshots {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Self {
            pages: Vec::new(),
            built: None,
            last_call: now,
            budget: CALLS_PER_SECOND,
            second: now,
        }
    }

    /// Page `page` of a snapshot at most [`REFRESH`] old.
    pub(crate) fn page(
        &mut self,
        aggregator: &mut Aggregator,
        page: u64,
    ) -> Result<v1::SnapshotPage, Status> {
        let now = Instant::now();
        self.take_call(now)?;
        self.last_call = now;
        let stale = self.built.is_none_or(|built| now - built >= REFRESH);
        if page == 0 && stale {
            aggregator.catch_up();
            self.pages = aggregator.snapshot();
            self.built = Some(now);
        }
        let count = self.pages.len() as u64;
        let update = usize::try_from(page)
            .ok()
            .and_then(|index| self.pages.get(index))
            .cloned()
            .ok_or_else(|| Status::out_of_range("no such snapshot page; start again at 0"))?;
        Ok(v1::SnapshotPage {
            update: Some(update),
            next_page_token: if page + 1 < count { page + 1 } else { 0 },
        })
    }

    fn take_call(&mut self, now: Instant) -> Result<(), Status> {
        if now - self.second >= Duration::from_secs(1) {
            self.second = now;
            self.budget = CALLS_PER_SECOND;
        }
        if self.budget == 0 {
            return Err(Status::resource_exhausted(format!(
                "more than {CALLS_PER_SECOND} Snapshot calls a second; call less often, or \
                 use Watch to follow changes"
            )));
        }
        self.budget -= 1;
        Ok(())
    }

    /// Lets an unused snapshot go; `true` when that freed one.
    pub(crate) fn expire(&mut self) -> bool {
        if self.built.is_some() && self.last_call.elapsed() >= KEEP {
            self.pages = Vec::new();
            self.built = None;
            return true;
        }
        false
    }
}
