//! The probe's clock: nanoseconds since the probe started, anchored to the wall clock once.
//!
//! Monotonic offsets keep durations honest when the wall clock jumps (NTP, suspend); the
//! single wall-clock anchor sent in `ProcessInfo.start_unix_ns` lets clients show real
//! times.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

struct Anchor {
    instant: Instant,
    unix_ns: i64,
}

static ANCHOR: OnceLock<Anchor> = OnceLock::new();

fn anchor() -> &'static Anchor {
    ANCHOR.get_or_init(|| Anchor {
        instant: Instant::now(),
        unix_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0),
    })
}

/// Starts the clock (idempotent).
pub(crate) fn start() {
    anchor();
}

/// Nanoseconds since the probe started; never 0, so that 0 can mean "never" in atomics.
#[inline]
pub(crate) fn now_ns() -> u64 {
    anchor().instant.elapsed().as_nanos() as u64 + 1
}

/// Wall clock (Unix epoch, ns) at probe time 0.
pub(crate) fn start_unix_ns() -> i64 {
    anchor().unix_ns
}
