//! The activity summaries published over the last seconds, kept so that a watcher that
//! connects while others watch (or while the recorder records) starts from a picture of
//! the last seconds, as the first watcher did, rather than from nothing.

use std::collections::VecDeque;

use taskscope_api::v1;

/// How far back summaries are kept: the first summary after a quiet spell reaches back
/// as far (`tasks/activity.rs`), so every watcher starts with the same span.
const KEPT_NS: u64 = 10_000_000_000;

/// Buckets kept at most, across threads: 10 s of 20 ms buckets for 100 busy threads.
const MAX_BUCKETS: usize = 50_000;

/// The summaries published in the last [`KEPT_NS`], oldest first.
#[derive(Default)]
pub(crate) struct RecentActivity {
    summaries: VecDeque<v1::ThreadActivity>,
    buckets: usize,
}

impl RecentActivity {
    /// Keeps `published`, and forgets what ended more than [`KEPT_NS`] before `now_ns` or
    /// is past [`MAX_BUCKETS`].
    pub(crate) fn keep(&mut self, published: &[v1::ThreadActivity], now_ns: u64) {
        for summary in published {
            self.buckets += summary.busy_ns.len();
            self.summaries.push_back(summary.clone());
        }
        let oldest_ns = now_ns.saturating_sub(KEPT_NS);
        while let Some(front) = self.summaries.front() {
            let end_ns = front.from_ns + front.bucket_ns * front.busy_ns.len() as u64;
            if end_ns >= oldest_ns && self.buckets <= MAX_BUCKETS {
                break;
            }
            self.buckets -= front.busy_ns.len();
            self.summaries.pop_front();
        }
    }

    /// What a snapshot carries, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &v1::ThreadActivity> {
        self.summaries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn summary(from_ms: u64, buckets: usize) -> v1::ThreadActivity {
        v1::ThreadActivity {
            thread: 2,
            from_ns: from_ms * MS,
            bucket_ns: 20 * MS,
            busy_ns: vec![MS; buckets],
            polls: vec![1; buckets],
            top_task: vec![7; buckets],
        }
    }

    #[test]
    fn summaries_of_the_last_ten_seconds_are_kept_in_order() {
        let mut recent = RecentActivity::default();
        recent.keep(&[summary(0, 5)], 100 * MS);
        recent.keep(&[summary(100, 5)], 200 * MS);
        let froms: Vec<u64> = recent.iter().map(|s| s.from_ns / MS).collect();
        assert_eq!(froms, [0, 100]);
        recent.keep(&[summary(10_100, 2)], 10_150 * MS);
        let froms: Vec<u64> = recent.iter().map(|s| s.from_ns / MS).collect();
        assert_eq!(froms, [100, 10_100]);
    }

    #[test]
    fn buckets_past_the_cap_are_forgotten_oldest_first() {
        let mut recent = RecentActivity::default();
        let many: Vec<_> = (0..MAX_BUCKETS as u64 / 5 + 10)
            .map(|i| summary(i, 5))
            .collect();
        recent.keep(&many, 0);
        assert!(recent.buckets <= MAX_BUCKETS);
        assert_eq!(
            recent.iter().last().map(|s| s.from_ns),
            many.last().map(|s| s.from_ns)
        );
    }
}
