//! What every recorded thread did over the last seconds: the probe's activity buckets
//! (`Update.activity`: busy time, polls and busiest task per bucket) kept per thread for
//! the timeline view, bounded in time and in count whatever the stream sends.

use std::collections::{BTreeMap, VecDeque};

use taskscope_api::v1;

/// How far back buckets are kept: the view's widest zoom.
pub(crate) const KEPT_NS: u64 = 30_000_000_000;

/// Buckets kept per thread at most, whatever their width (1,500 at the probe's 20 ms).
const MAX_BUCKETS: usize = 4_096;

/// Threads kept at most: a corrupt or hostile stream must not grow the model without end.
const MAX_THREADS: usize = 1_024;

/// Buckets narrower than this are refused (a stream that sent them would fill
/// [`MAX_BUCKETS`] with a fraction of a second).
const MIN_BUCKET_NS: u64 = 1_000_000;

/// One bucket of one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// Probe time it starts.
    pub(crate) start_ns: u64,
    pub(crate) busy_ns: u64,
    pub(crate) polls: u32,
    /// The task that took the most of its poll time; 0 when idle.
    pub(crate) top_task: u64,
}

/// The kept buckets of every thread that polled in the last [`KEPT_NS`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Activity {
    /// The probe's bucket width; 0 while the probe has said it sends none.
    bucket_ns: u64,
    /// Each thread's buckets, oldest first; only buckets the probe named (others were
    /// idle).
    threads: BTreeMap<u32, VecDeque<Bucket>>,
}

impl Activity {
    /// What the probe said of its summaries at the start of a stream.
    pub(crate) fn set_bucket_ns(&mut self, bucket_ns: u64) {
        self.bucket_ns = bucket_ns;
    }

    /// The probe's bucket width, when it sends activity at all.
    pub(crate) fn bucket_ns(&self) -> Option<u64> {
        (self.bucket_ns > 0).then_some(self.bucket_ns)
    }

    /// Folds in one update's summaries, then forgets buckets older than [`KEPT_NS`]
    /// before `now_ns`.
    pub(crate) fn apply(&mut self, activity: &[v1::ThreadActivity], now_ns: u64) {
        for thread in activity {
            if thread.bucket_ns < MIN_BUCKET_NS {
                continue;
            }
            if !self.threads.contains_key(&thread.thread) && self.threads.len() >= MAX_THREADS {
                continue;
            }
            let kept = self.threads.entry(thread.thread).or_default();
            let buckets = (thread.busy_ns.iter())
                .zip(&thread.polls)
                .zip(&thread.top_task);
            for (index, ((&busy_ns, &polls), &top_task)) in buckets.enumerate() {
                let start_ns = thread.from_ns + index as u64 * thread.bucket_ns;
                // Buckets come in time order; a repeated or older one is ignored.
                if kept.back().is_some_and(|last| last.start_ns >= start_ns) {
                    continue;
                }
                if busy_ns == 0 && polls == 0 {
                    continue;
                }
                kept.push_back(Bucket {
                    start_ns,
                    busy_ns: busy_ns.min(thread.bucket_ns),
                    polls,
                    top_task,
                });
                if kept.len() > MAX_BUCKETS {
                    kept.pop_front();
                }
            }
        }
        let oldest_ns = now_ns.saturating_sub(KEPT_NS);
        for kept in self.threads.values_mut() {
            while kept.front().is_some_and(|b| b.start_ns < oldest_ns) {
                kept.pop_front();
            }
        }
        self.threads.retain(|_, kept| !kept.is_empty());
    }

    /// The threads with buckets kept, by number.
    pub(crate) fn threads(&self) -> impl Iterator<Item = u32> + '_ {
        self.threads.keys().copied()
    }

    /// `thread`'s buckets that start in `from_ns..to_ns`, oldest first.
    pub(crate) fn buckets(
        &self,
        thread: u32,
        from_ns: u64,
        to_ns: u64,
    ) -> impl Iterator<Item = &Bucket> + '_ {
        (self.threads.get(&thread).into_iter().flatten())
            .skip_while(move |b| b.start_ns < from_ns)
            .take_while(move |b| b.start_ns < to_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn summary(thread: u32, from_ms: u64, busy_ms: &[u64]) -> v1::ThreadActivity {
        v1::ThreadActivity {
            thread,
            from_ns: from_ms * MS,
            bucket_ns: 20 * MS,
            busy_ns: busy_ms.iter().map(|ms| ms * MS).collect(),
            polls: busy_ms.iter().map(|&ms| u32::from(ms > 0)).collect(),
            top_task: busy_ms
                .iter()
                .map(|&ms| if ms > 0 { 7 } else { 0 })
                .collect(),
        }
    }

    #[test]
    fn buckets_are_kept_per_thread_idle_ones_left_out() {
        let mut activity = Activity::default();
        activity.apply(&[summary(2, 100, &[20, 0, 5])], 200 * MS);
        let kept: Vec<_> = activity.buckets(2, 0, u64::MAX).collect();
        assert_eq!(kept.len(), 2);
        assert_eq!((kept[0].start_ns, kept[0].busy_ns), (100 * MS, 20 * MS));
        assert_eq!((kept[1].start_ns, kept[1].top_task), (140 * MS, 7));
        assert_eq!(activity.buckets(2, 120 * MS, 140 * MS).count(), 0);
    }

    #[test]
    fn buckets_older_than_the_kept_span_are_forgotten() {
        let mut activity = Activity::default();
        activity.apply(&[summary(2, 0, &[10])], 100 * MS);
        activity.apply(&[summary(3, KEPT_NS, &[10])], KEPT_NS + 100 * MS);
        assert_eq!(activity.threads().collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn a_hostile_stream_cannot_grow_it_without_end() {
        let mut activity = Activity::default();
        let mut tiny = summary(1, 0, &[1; 10]);
        tiny.bucket_ns = 1;
        activity.apply(&[tiny], 0);
        assert_eq!(activity.threads().count(), 0);
        let many: Vec<_> = (0..2_000).map(|t| summary(t, 0, &[1])).collect();
        activity.apply(&many, 0);
        assert_eq!(activity.threads().count(), MAX_THREADS);
    }
}
