//! console-subscriber's poll-duration histograms (HdrHistogram, V2-serialized, in ns) in
//! taskscope's 44 buckets (`taskscope_api::histogram`).

use console_api::tasks::DurationHistogram;
use console_api::tasks::task_details::PollTimesHistogram;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use taskscope_api::histogram::{BUCKETS, bucket_of};

/// A task's polls by duration, and its longest poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Polls {
    pub(crate) buckets: Vec<u32>,
    pub(crate) max_ns: u64,
}

/// Decodes a task's poll histogram; `None` when it cannot be read (it is then left out,
/// not guessed).
pub(crate) fn polls(histogram: &PollTimesHistogram) -> Option<Polls> {
    match histogram {
        PollTimesHistogram::Histogram(histogram) => with_outliers(histogram),
        PollTimesHistogram::LegacyHistogram(raw) => convert(raw, 0, None),
    }
}

fn with_outliers(histogram: &DurationHistogram) -> Option<Polls> {
    convert(
        &histogram.raw_histogram,
        histogram.high_outliers,
        histogram.highest_outlier,
    )
}

/// console clamps polls longer than its histogram's maximum (1 s by default) and counts
/// them apart as outliers; they go to the bucket of the longest one.
fn convert(raw: &[u8], high_outliers: u64, highest_outlier: Option<u64>) -> Option<Polls> {
    let histogram: Histogram<u64> = Deserializer::new().deserialize(&mut &raw[..]).ok()?;
    let mut buckets = vec![0u32; BUCKETS];
    let mut add = |nanos: u64, count: u64| {
        let bucket = &mut buckets[bucket_of(nanos).min(BUCKETS - 1)];
        *bucket = bucket.saturating_add(u32::try_from(count).unwrap_or(u32::MAX));
    };
    for value in histogram.iter_recorded() {
        add(value.value_iterated_to(), value.count_at_value());
    }
    let mut max_ns = histogram.max();
    if let Some(highest) = highest_outlier.filter(|_| high_outliers > 0) {
        add(highest, high_outliers);
        max_ns = max_ns.max(highest);
    }
    Some(Polls { buckets, max_ns })
}

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::{Serializer, V2Serializer};

    use super::*;

    fn raw(values: &[u64]) -> Vec<u8> {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 2).unwrap();
        for &value in values {
            histogram.record(value).unwrap();
        }
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&histogram, &mut bytes)
            .unwrap();
        bytes
    }

    #[test]
    fn polls_land_in_taskscope_buckets_and_outliers_count_as_the_longest() {
        let histogram = DurationHistogram {
            raw_histogram: raw(&[500, 500, 3_000, 250_000_000]),
            max_value: 1_000_000_000,
            high_outliers: 2,
            highest_outlier: Some(2_500_000_000),
        };
        let polls = polls(&PollTimesHistogram::Histogram(histogram)).unwrap();
        assert_eq!(polls.buckets.len(), BUCKETS);
        assert_eq!(polls.buckets[bucket_of(500)], 2);
        assert_eq!(polls.buckets[bucket_of(3_000)], 1);
        assert_eq!(polls.buckets[bucket_of(250_000_000)], 1);
        assert_eq!(polls.buckets[BUCKETS - 1], 2);
        assert_eq!(polls.buckets.iter().sum::<u32>(), 6);
        assert_eq!(polls.max_ns, 2_500_000_000);
    }

    #[test]
    fn an_unreadable_histogram_is_left_out() {
        assert_eq!(
            polls(&PollTimesHistogram::LegacyHistogram(vec![1, 2, 3])),
            None
        );
    }
}
