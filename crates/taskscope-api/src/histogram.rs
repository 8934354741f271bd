//! The poll-duration histogram shared by the probe (which fills it) and clients (which
//! read percentiles from it).
//!
//! 44 fixed buckets cost 176 bytes per task as `u32` counters, against the tens of KiB an
//! HDR histogram per task costs, and still resolve a duration to within a factor of 1.5:
//! enough to tell a 2 µs poll from a 3 µs one, and a 100 ms stall from a 150 ms one.
//! Bucket 0 counts polls under 1024 ns; every power of two `[2^k, 2^(k+1))` ns with
//! `k >= 10` is then split in two halves at `1.5 * 2^k`; the last bucket counts everything
//! from 2^31 ns (~2.1 s) on.

/// Number of buckets.
pub const BUCKETS: usize = 44;

const FIRST_POWER: u32 = 10;

/// The bucket a poll of `nanos` falls into.
#[inline]
pub fn bucket_of(nanos: u64) -> usize {
    if nanos < 1 << FIRST_POWER {
        return 0;
    }
    let power = 63 - nanos.leading_zeros();
    let upper_half = (nanos >> (power - 1)) & 1;
    let index = 2 * (power - FIRST_POWER) as usize + upper_half as usize + 1;
    index.min(BUCKETS - 1)
}

/// The range `[low, high)` of durations (ns) bucket `index` counts; `high` is `u64::MAX`
/// for the last bucket.
pub fn bucket_bounds(index: usize) -> (u64, u64) {
    if index == 0 {
        return (0, 1 << FIRST_POWER);
    }
    let power = FIRST_POWER + ((index - 1) / 2) as u32;
    let base = 1u64 << power;
    let (low, high) = if (index - 1).is_multiple_of(2) {
        (base, base + base / 2)
    } else {
        (base + base / 2, base * 2)
    };
    if index == BUCKETS - 1 {
        (low, u64::MAX)
    } else {
        (low, high)
    }
}

/// Estimates the `q`-quantile (0.0..=1.0) of the durations counted in `buckets`, as the
/// geometric middle of the bucket it falls in (the lower bound for the open last bucket).
/// `None` when nothing was counted.
pub fn quantile(buckets: &[u32], q: f64) -> Option<u64> {
    let total: u64 = buckets.iter().map(|&c| u64::from(c)).sum();
    if total == 0 {
        return None;
    }
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0u64;
    for (index, &count) in buckets.iter().enumerate() {
        seen += u64::from(count);
        if seen >= rank {
            let (low, high) = bucket_bounds(index);
            return Some(if high == u64::MAX || low == 0 {
                low.max(high.min(1 << FIRST_POWER) / 2)
            } else {
                ((low as f64) * (high as f64)).sqrt() as u64
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_falls_inside_the_bounds_of_its_bucket() {
        for nanos in [
            0,
            1,
            1023,
            1024,
            1535,
            1536,
            2047,
            2048,
            150_000_000,
            1 << 31,
            u64::MAX,
        ] {
            let (low, high) = bucket_bounds(bucket_of(nanos));
            assert!(
                low <= nanos && (nanos < high || high == u64::MAX),
                "{nanos}"
            );
        }
    }

    #[test]
    fn buckets_are_contiguous() {
        for index in 1..BUCKETS {
            assert_eq!(
                bucket_bounds(index - 1).1,
                bucket_bounds(index).0,
                "{index}"
            );
        }
    }

    #[test]
    fn a_100ms_stall_and_a_150ms_stall_land_in_different_buckets() {
        assert_ne!(bucket_of(100_000_000), bucket_of(150_000_000));
    }

    #[test]
    fn quantiles_come_from_the_right_bucket() {
        let mut buckets = [0u32; BUCKETS];
        buckets[bucket_of(5_000)] = 99;
        buckets[bucket_of(200_000_000)] = 1;
        let p50 = quantile(&buckets, 0.5).unwrap();
        assert_eq!(bucket_of(p50), bucket_of(5_000));
        let p100 = quantile(&buckets, 1.0).unwrap();
        assert_eq!(bucket_of(p100), bucket_of(200_000_000));
        assert_eq!(quantile(&[0; BUCKETS], 0.5), None);
    }
}
