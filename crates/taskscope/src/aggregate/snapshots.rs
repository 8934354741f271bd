//! `Snapshot` calls, answered from a recent snapshot rather than a new one each time, and
//! rate-limited: building a snapshot of a large app takes the probe's thread a while, and
//! a client calling in a loop kept it at 73-96% of a core. Serving a page costs in
//! proportion to its size (a deep copy, then encoding, both on the probe's thread), so the
//! limit is in bytes as well as in calls.
//!
//! Pages of one snapshot now come from the same state, which they did not when each call
//! built its own.

use std::time::{Duration, Instant};

use taskscope_api::v1;
use tonic::Status;

use crate::aggregate::aggregator::Aggregator;

/// A snapshot is rebuilt for a call at most this often.
const REFRESH: Duration = Duration::from_secs(1);
/// A snapshot nobody asked for in this long is let go (it can hold megabytes).
const KEEP: Duration = Duration::from_secs(5);
/// `Snapshot` calls answered per second, by all clients together...
pub(crate) const CALLS_PER_SECOND: u32 = 20;
/// ...and bytes of pages (encoded) per second: a 1 MiB page of a 5,000-task app costs
/// the probe's thread tens of milliseconds in a debug build.
pub(crate) const BYTES_PER_SECOND: usize = 2 * 1024 * 1024;

/// The last snapshot built for a call, and the call budget.
pub(crate) struct Snapshots {
    pages: Vec<v1::Update>,
    built: Option<Instant>,
    last_call: Instant,
    /// Calls and bytes left in the current second, and when it started.
    calls: u32,
    bytes: usize,
    second: Instant,
}

impl Snapshots {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Self {
            pages: Vec::new(),
            built: None,
            last_call: now,
            calls: CALLS_PER_SECOND,
            bytes: BYTES_PER_SECOND,
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
        // The snapshot's first page is always fresh enough; later pages come from it.
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
        self.bytes = self
            .bytes
            .saturating_sub(prost::Message::encoded_len(&update));
        Ok(v1::SnapshotPage {
            update: Some(update),
            next_page_token: if page + 1 < count { page + 1 } else { 0 },
        })
    }

    /// Takes a call from this second's budget; a call is refused once the calls or the
    /// bytes of this second are spent (a page larger than what is left still goes out, so
    /// any page can be fetched).
    fn take_call(&mut self, now: Instant) -> Result<(), Status> {
        if now - self.second >= Duration::from_secs(1) {
            self.second = now;
            self.calls = CALLS_PER_SECOND;
            self.bytes = BYTES_PER_SECOND;
        }
        if self.calls == 0 || self.bytes == 0 {
            return Err(Status::resource_exhausted(format!(
                "more than {CALLS_PER_SECOND} Snapshot calls or {} MiB of pages a second; \
                 call less often, or use Watch to follow changes",
                BYTES_PER_SECOND / (1024 * 1024)
            )));
        }
        self.calls -= 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_beyond_the_budget_are_refused_until_the_next_second() {
        let mut snapshots = Snapshots::new();
        let now = snapshots.second;
        for _ in 0..CALLS_PER_SECOND {
            assert!(snapshots.take_call(now).is_ok());
        }
        let refused = snapshots.take_call(now).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("Snapshot calls"), "{refused:?}");
        assert!(snapshots.take_call(now + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn spent_bytes_refuse_calls_too() {
        let mut snapshots = Snapshots::new();
        let now = snapshots.second;
        snapshots.bytes = 0;
        assert!(snapshots.take_call(now).is_err());
        assert!(snapshots.take_call(now + Duration::from_secs(1)).is_ok());
    }
}
