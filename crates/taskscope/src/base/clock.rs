//! The probe's clock: nanoseconds since the probe started, anchored to the wall clock once.
//!
//! Monotonic offsets keep durations honest when the wall clock jumps (NTP, suspend); the
//! single wall-clock anchor sent in `ProcessInfo.start_unix_ns` lets clients show real
//! times.
//!
//! Every poll reads the clock twice, so the read is the largest single cost of the probe
//! per poll. Where the kernel itself keeps `CLOCK_MONOTONIC` on the CPU's time-stamp
//! counter (x86-64 Linux with an invariant TSC, `current_clocksource` = `tsc`), the probe
//! reads the counter directly and scales it, as the vDSO would, without the vDSO's
//! function call and sequence checks: about 40 ns less per poll on a VM, measured. The
//! scale is calibrated against `CLOCK_MONOTONIC` when the probe starts (2 ms) and refined
//! every second by the probe's thread, each refinement continuing the previous mapping
//! so that time never jumps. Everywhere else, `CLOCK_MONOTONIC` (or `Instant`) is read.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

struct Anchor {
    monotonic: Monotonic,
    unix_ns: i64,
}

/// The probe clock's zero and its wall-clock time: global because every timestamp, taken
/// on any thread from any hook, must be on the one scale clients convert.
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
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    tsc::clock();
}

/// Nanoseconds since the probe started; never 0, so that 0 can mean "never" in atomics.
#[inline]
pub(crate) fn now_ns() -> u64 {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if let Some(clock) = tsc::clock() {
        return clock.now_ns() + 1;
    }
    Monotonic::now().since(&anchor().monotonic) + 1
}

/// The CPU time this thread has run so far, in ns (`CLOCK_THREAD_CPUTIME_ID`): unlike
/// [`now_ns`], it stands still while the thread waits for a CPU. A system call, hundreds of
/// ns, so only for the rare places that must tell running from waiting; `None` where the
/// platform does not tell.
pub(crate) fn thread_cpu_ns() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec to write to; the clock id is a constant.
        let read = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        (read == 0).then(|| now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Refines the clock's scale (the probe's thread calls this now and then; cheap, and at
/// most once a second it does anything).
pub(crate) fn recalibrate() {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if let Some(clock) = tsc::clock() {
        clock.recalibrate();
    }
}

/// Wall clock (Unix epoch, ns) at probe time 0.
pub(crate) fn start_unix_ns() -> i64 {
    anchor().unix_ns
}

/// Probe time from `CLOCK_MONOTONIC`, however the probe's clock is read.
fn monotonic_ns() -> u64 {
    Monotonic::now().since(&anchor().monotonic)
}

/// A reading of the monotonic clock. On Linux, `CLOCK_MONOTONIC` read directly (the clock
/// `Instant` uses, without `Instant::elapsed`'s checked 128-bit arithmetic).
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

/// Probe time from a time-stamp counter reading, on the line through (`base_tsc`,
/// `base_ns`) with slope `mult` (ns per tick, 32.32 fixed point).
#[inline]
fn scale(tsc: u64, base_tsc: u64, base_ns: u64, mult: u64) -> u64 {
    let ticks = tsc.saturating_sub(base_tsc) as u128;
    base_ns + ((ticks * mult as u128) >> 32) as u64
}

/// The slope through two (ticks, ns) spans, 32.32 fixed point.
fn slope(ticks: u64, ns: u64) -> u64 {
    if ticks == 0 {
        return 1 << 32;
    }
    (((ns as u128) << 32) / ticks as u128) as u64
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod tsc {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering, fence};
    use std::time::Duration;

    /// How long the first calibration spins.
    const FIRST_CALIBRATION: Duration = Duration::from_millis(2);
    /// Refinements at most this often.
    const REFINE_EVERY_NS: u64 = 1_000_000_000;

    pub(super) struct TscClock {
        /// A seqlock over the mapping below: odd while it changes.
        seq: AtomicU64,
        base_tsc: AtomicU64,
        base_ns: AtomicU64,
        mult: AtomicU64,
        /// Where calibration started: (ticks, monotonic probe ns).
        origin: (u64, u64),
        /// Monotonic probe ns of the last refinement.
        refined_ns: AtomicU64,
    }

    static CLOCK: OnceLock<Option<TscClock>> = OnceLock::new();

    /// The TSC clock, when the kernel trusts the TSC for `CLOCK_MONOTONIC`.
    #[inline]
    pub(super) fn clock() -> Option<&'static TscClock> {
        CLOCK.get_or_init(TscClock::calibrate).as_ref()
    }

    #[inline]
    fn rdtsc() -> u64 {
        // SAFETY: RDTSC exists on every x86-64 CPU and has no preconditions.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    /// A (ticks, monotonic probe ns) pair read as close together as possible.
    fn pair() -> (u64, u64) {
        let before = rdtsc();
        let ns = super::monotonic_ns();
        let after = rdtsc();
        (before / 2 + after / 2, ns)
    }

    /// Whether the kernel keeps `CLOCK_MONOTONIC` on an invariant TSC: then it has checked
    /// that the counter runs at a constant rate and agrees across CPUs.
    fn trusted() -> bool {
        // SAFETY: CPUID exists on every x86-64 CPU. (`unsafe` for the Rust versions that
        // still declare it so.)
        #[allow(unused_unsafe)]
        let invariant = unsafe {
            core::arch::x86_64::__cpuid(0x8000_0000).eax >= 0x8000_0007
                && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
        };
        invariant
            && std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|source| source.trim() == "tsc")
    }

    impl TscClock {
        fn calibrate() -> Option<Self> {
            if !trusted() {
                return None;
            }
            let origin = pair();
            let started = std::time::Instant::now();
            while started.elapsed() < FIRST_CALIBRATION {
                std::hint::spin_loop();
            }
            let now = pair();
            let (ticks, ns) = (now.0.checked_sub(origin.0)?, now.1.checked_sub(origin.1)?);
            let mult = super::slope(ticks, ns);
            // Implausible rates (a counter that did not move, or moved backwards) mean the
            // kernel's trust was misplaced here: keep to CLOCK_MONOTONIC.
            if !(1u64 << 26..1u64 << 36).contains(&mult) {
                return None;
            }
            Some(Self {
                seq: AtomicU64::new(0),
                base_tsc: AtomicU64::new(now.0),
                base_ns: AtomicU64::new(now.1),
                mult: AtomicU64::new(mult),
                origin,
                refined_ns: AtomicU64::new(now.1),
            })
        }

        #[inline]
        pub(super) fn now_ns(&self) -> u64 {
            loop {
                let seq = self.seq.load(Ordering::Acquire);
                let base_tsc = self.base_tsc.load(Ordering::Relaxed);
                let base_ns = self.base_ns.load(Ordering::Relaxed);
                let mult = self.mult.load(Ordering::Relaxed);
                fence(Ordering::Acquire);
                if seq.is_multiple_of(2) && self.seq.load(Ordering::Relaxed) == seq {
                    return super::scale(rdtsc(), base_tsc, base_ns, mult);
                }
                std::hint::spin_loop();
            }
        }

        /// Continues the mapping from where it is now with the slope measured since the
        /// origin (ever more exact as time passes). Only the probe's thread calls this.
        pub(super) fn recalibrate(&self) {
            self.refine(REFINE_EVERY_NS);
        }

        /// Refines the mapping if the last refinement is at least `every_ns` old.
        pub(super) fn refine(&self, every_ns: u64) {
            let (tsc, mono_ns) = pair();
            if mono_ns.saturating_sub(self.refined_ns.load(Ordering::Relaxed)) < every_ns {
                return;
            }
            self.refined_ns.store(mono_ns, Ordering::Relaxed);
            let (Some(ticks), Some(ns)) = (
                tsc.checked_sub(self.origin.0),
                mono_ns.checked_sub(self.origin.1),
            ) else {
                return;
            };
            let mult = super::slope(ticks, ns);
            if !(1u64 << 26..1u64 << 36).contains(&mult) {
                return;
            }
            let continued = self.now_ns();
            let seq = self.seq.load(Ordering::Relaxed);
            self.seq.store(seq + 1, Ordering::Relaxed);
            fence(Ordering::Release);
            self.base_tsc.store(tsc, Ordering::Relaxed);
            self.base_ns.store(continued, Ordering::Relaxed);
            self.mult.store(mult, Ordering::Relaxed);
            self.seq.store(seq + 2, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_time_moves_forward_with_real_time() {
        let before = now_ns();
        let mono_before = monotonic_ns();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let elapsed = now_ns() - before;
        let mono_elapsed = monotonic_ns() - mono_before;
        // Whichever clock is in use, it agrees with CLOCK_MONOTONIC to within 1%.
        let error = elapsed.abs_diff(mono_elapsed);
        assert!(error < mono_elapsed / 100, "{elapsed} vs {mono_elapsed}");
    }

    #[test]
    fn scaling_follows_the_line_through_its_base() {
        let half = 1u64 << 31; // 0.5 ns per tick
        assert_eq!(scale(1_000, 1_000, 7, half), 7);
        assert_eq!(scale(3_000, 1_000, 7, half), 1_007);
        // Far from the base (an hour of a 3 GHz counter), no overflow.
        let hour = 3_000_000_000u64 * 3_600;
        let scaled = scale(hour, 0, 0, slope(3, 1));
        // 32 bits of fraction: under a microsecond off after an hour without refinement.
        assert!(scaled.abs_diff(hour / 3) < 1_000, "{scaled}");
        // A counter read before the base never goes back in time.
        assert_eq!(scale(10, 1_000, 7, half), 7);
    }

    #[test]
    fn recalibrating_never_moves_time_backwards() {
        let mut last = now_ns();
        for _ in 0..3 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
            if let Some(clock) = tsc::clock() {
                clock.refine(0);
            }
            for _ in 0..1000 {
                let now = now_ns();
                assert!(now >= last, "{now} < {last}");
                last = now;
            }
        }
    }
}
