//! The probe's clock: nanoseconds since the probe started, anchored to the wall clock once.
//!
//! Monotonic offsets keep durations honest when the wall clock jumps (NTP, suspend); the
//! single wall-clock anchor sent in `ProcessInfo.start_unix_ns` lets clients show real
//! times.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

struct Anchor {
    monotonic: Monotonic,
    unix_ns: i64,
}

static ANCHOR: OnceLock<Anchor> = OnceLock::new();

fn anchor() -> &'static Anchor {
    ANCHOR.get_or_init(|| Anchor {
        monotonic: Monotonic::now(),
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
    Monotonic::now().since(&anchor().monotonic) + 1
}

/// Wall clock (Unix epoch, ns) at probe time 0.
pub(crate) fn start_unix_ns() -> i64 {
    anchor().unix_ns
}

/// A reading of the monotonic clock.
///
/// It is read twice per poll, so on Linux it is `CLOCK_MONOTONIC` (the clock `Instant`
/// uses) read directly: `Instant::elapsed` adds checked 128-bit arithmetic to the same
/// read, a measurable part of the probe's cost per poll.
#[cfg(target_os = "linux")]
struct Monotonic(u64);

#[cfg(target_os = "linux")]
impl Monotonic {
    #[inline]
    fn now() -> Self {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec to write to; CLOCK_MONOTONIC always exists.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        Self(
            (now.tv_sec as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(now.tv_nsec as u64),
        )
    }

    #[inline]
    fn since(&self, earlier: &Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

#[cfg(not(target_os = "linux"))]
struct Monotonic(std::time::Instant);

#[cfg(not(target_os = "linux"))]
impl Monotonic {
    #[inline]
    fn now() -> Self {
        Self(std::time::Instant::now())
    }

    #[inline]
    fn since(&self, earlier: &Self) -> u64 {
        self.0.saturating_duration_since(earlier.0).as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_time_moves_forward_with_real_time() {
        let before = super::now_ns();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let elapsed = super::now_ns() - before;
        assert!((20_000_000..2_000_000_000).contains(&elapsed), "{elapsed}");
    }
}
