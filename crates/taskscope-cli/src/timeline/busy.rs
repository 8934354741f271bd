//! Each thread's busy share over time, from the probe's activity summaries
//! (`Update.activity`, which a recording carries): the points of a counter track over the
//! whole of a recording, not only its stalls' windows.
//!
//! A counter holds its value until the next point, so only changes are points: an idle
//! stretch is one point, not fifty a second. A thread the probe summarised nothing for
//! (it polled nothing) drops to 0 where its last bucket ended, and every thread still
//! busy at the end drops to 0 there too, so that no counter claims work past what was
//! recorded.

use std::collections::HashMap;

use taskscope_api::v1;

use crate::timeline::{SliceKind, Timeline};

/// The live export's buckets when the probe does not say its own
/// (`ProcessInfo.activity_bucket_ns`): what probes sum activity into.
pub(crate) const BUCKET_NS: u64 = 20_000_000;

/// One point of a thread's busy-share counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BusyPoint {
    pub(crate) thread: u32,
    pub(crate) at_ns: u64,
    /// Share of the bucket spent inside polls, in percent.
    pub(crate) percent: u32,
}

/// The counters' state across summaries: where each thread's last bucket ended, and its
/// last value.
#[derive(Debug, Default)]
pub(crate) struct BusyCounters {
    last: HashMap<u32, (u64, u32)>,
}

impl BusyCounters {
    /// The points `activity` adds to its thread's counter, oldest first.
    pub(crate) fn points(&mut self, activity: &v1::ThreadActivity) -> Vec<BusyPoint> {
        let mut points = Vec::new();
        if activity.bucket_ns == 0 {
            return points;
        }
        let thread = activity.thread;
        let point = |at_ns, percent| BusyPoint {
            thread,
            at_ns,
            percent,
        };
        let (mut end_ns, mut value) = self.last.get(&thread).copied().unwrap_or((0, 0));
        if activity.from_ns > end_ns && value != 0 {
            // Summarised nothing in between: it polled nothing.
            points.push(point(end_ns, 0));
            value = 0;
        }
        for (index, &busy_ns) in activity.busy_ns.iter().enumerate() {
            let at_ns = activity.from_ns + index as u64 * activity.bucket_ns;
            if at_ns < end_ns {
                continue; // Already counted (a snapshot reaching back over a delta).
            }
            let percent = (busy_ns.min(activity.bucket_ns) * 100 / activity.bucket_ns) as u32;
            if percent != value || end_ns == 0 {
                points.push(point(at_ns, percent));
                value = percent;
            }
            end_ns = at_ns + activity.bucket_ns;
        }
        self.last.insert(thread, (end_ns, value));
        points
    }

    /// The closing points: each thread still above 0 drops to 0 where its last bucket
    /// ended.
    pub(crate) fn finish(&mut self) -> Vec<BusyPoint> {
        let mut points: Vec<BusyPoint> = (self.last.drain())
            .filter(|&(_, (_, value))| value != 0)
            .map(|(thread, (at_ns, _))| BusyPoint {
                thread,
                at_ns,
                percent: 0,
            })
            .collect();
        points.sort_by_key(|p| p.thread);
        points
    }
}

/// Each thread's polls in a flight-recorder window, summed into buckets as the probe sums
/// its activity summaries: what a live probe's window gives the counters, where no
/// summaries come with it. Nested polls count once; buckets start at multiples of
/// `bucket_ns` and cover the window.
pub(crate) fn activity_of(timeline: &Timeline, bucket_ns: u64) -> Vec<v1::ThreadActivity> {
    if bucket_ns == 0 || timeline.to_ns <= timeline.from_ns {
        return Vec::new();
    }
    let from_ns = timeline.from_ns / bucket_ns * bucket_ns;
    let buckets = (timeline.to_ns - from_ns).div_ceil(bucket_ns) as usize;
    let mut activity = Vec::new();
    for track in &timeline.tracks {
        let mut polls: Vec<(u64, u64)> = (timeline.slices.iter())
            .filter(|s| s.thread == track.thread && s.what == SliceKind::Poll)
            .map(|s| (s.start_ns, s.end_ns.max(s.start_ns)))
            .collect();
        if polls.is_empty() {
            continue;
        }
        polls.sort_unstable();
        let mut thread = v1::ThreadActivity {
            thread: track.thread,
            from_ns,
            bucket_ns,
            busy_ns: vec![0; buckets],
            polls: vec![0; buckets],
            ..Default::default()
        };
        let mut covered_to = 0;
        for (start, end) in polls {
            let index = ((start.max(from_ns) - from_ns) / bucket_ns) as usize;
            if let Some(count) = thread.polls.get_mut(index) {
                *count += 1;
            }
            // Only what no earlier poll on the thread covered: a nested poll counts once.
            let mut at = start.max(covered_to);
            while at < end {
                let index = ((at.max(from_ns) - from_ns) / bucket_ns) as usize;
                let Some(busy) = thread.busy_ns.get_mut(index) else {
                    break;
                };
                let bucket_end = from_ns + (index as u64 + 1) * bucket_ns;
                let until = end.min(bucket_end);
                *busy += until - at;
                at = until;
            }
            covered_to = covered_to.max(end);
        }
        activity.push(thread);
    }
    activity
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUCKET: u64 = 20;

    fn activity(thread: u32, from_ns: u64, busy: &[u64]) -> v1::ThreadActivity {
        v1::ThreadActivity {
            thread,
            from_ns,
            bucket_ns: BUCKET,
            busy_ns: busy.to_vec(),
            polls: vec![1; busy.len()],
            top_task: vec![1; busy.len()],
        }
    }

    fn values(points: &[BusyPoint]) -> Vec<(u64, u32)> {
        points.iter().map(|p| (p.at_ns, p.percent)).collect()
    }

    #[test]
    fn only_changes_are_points_and_a_gap_drops_to_zero() {
        let mut counters = BusyCounters::default();
        let first = counters.points(&activity(1, 100, &[10, 10, 20, 20]));
        assert_eq!(values(&first), [(100, 50), (140, 100)]);
        // Nothing summarised from 180 to 220: idle, then busy again.
        let second = counters.points(&activity(1, 220, &[5]));
        assert_eq!(values(&second), [(180, 0), (220, 25)]);
        assert_eq!(values(&counters.finish()), [(240, 0)]);
    }

    #[test]
    fn buckets_already_counted_are_not_counted_again() {
        let mut counters = BusyCounters::default();
        counters.points(&activity(2, 0, &[20, 20]));
        let again = counters.points(&activity(2, 20, &[20, 0]));
        assert_eq!(values(&again), [(40, 0)]);
        assert!(counters.finish().is_empty(), "already at 0");
    }

    #[test]
    fn an_idle_first_bucket_is_still_a_point() {
        let mut counters = BusyCounters::default();
        let points = counters.points(&activity(3, 0, &[0, 0, 4]));
        assert_eq!(values(&points), [(0, 0), (40, 20)]);
    }

    #[test]
    fn a_windows_polls_become_buckets_with_nested_polls_counted_once() {
        use crate::timeline::{Slice, Track};
        let poll = |thread, start_ns, end_ns| Slice {
            thread,
            name: String::new(),
            task_id: 1,
            start_ns,
            end_ns,
            what: SliceKind::Poll,
        };
        let track = |thread| Track {
            thread,
            name: "worker".into(),
            overflowed: 0,
            complete_from_ns: 0,
        };
        let timeline = Timeline {
            pid: 1,
            from_ns: 25,
            to_ns: 95,
            tracks: vec![track(1), track(2)],
            slices: vec![
                // 10 ns in the first bucket, 15 in the second.
                poll(1, 30, 55),
                // Nested in it: counted once.
                poll(1, 35, 45),
                poll(1, 70, 80),
            ],
            lives: Vec::new(),
            flows: Vec::new(),
        };
        let activity = activity_of(&timeline, BUCKET);
        assert_eq!(
            activity.len(),
            1,
            "a thread that polled nothing has no summary"
        );
        assert_eq!(activity[0].from_ns, 20);
        assert_eq!(activity[0].busy_ns, [10, 15, 10, 0]);
        assert_eq!(activity[0].polls, [2, 0, 1, 0]);
    }
}
