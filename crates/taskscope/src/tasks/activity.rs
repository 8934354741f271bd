//! What each recorded thread did between two publishes, summed into fixed buckets: the
//! busy time, the polls and the busiest task of every bucket (`Update.activity`), so that
//! a client can draw every thread's last seconds at all times, not only around a stall.
//!
//! Read from the flight recorder's history (`flight.rs`, which hands the events over),
//! never drained from it: a later stall's window needs the same events. Each thread keeps
//! a cursor here (how many of its events were summed, and the polls still open), so each
//! event is summed once however often the publisher runs.

use std::collections::HashMap;

use taskscope_api::v1;

use crate::tasks::ring::{Event, EventKind};

/// The width of a bucket. 20 ms: a dashboard column at its narrowest zoom (2 s over a
/// hundred columns) is one bucket, and a busy thread costs 5 buckets per default 100 ms
/// publish, about a hundred bytes.
pub(crate) const BUCKET_NS: u64 = 20_000_000;

/// The longest span one summary covers: the first after a client arrives, or after a long
/// pause of the probe's thread, starts no earlier than this before now.
const MAX_SPAN_NS: u64 = 10_000_000_000;

/// Polls a thread can have open at once that are followed (a `block_on` body polling a
/// `LocalSet`'s tasks nests two); deeper ones count for the outer poll.
const MAX_NESTED: usize = 8;

/// Where the summaries stopped.
#[derive(Default)]
pub(crate) struct Cursor {
    /// The end of the last span summed (a multiple of [`BUCKET_NS`]); 0 before the first.
    to_ns: u64,
    threads: HashMap<u32, ThreadCursor>,
}

/// One thread's place in its history.
#[derive(Default)]
pub(crate) struct ThreadCursor {
    /// The thread's events summed so far, counted since its history began.
    pub(crate) next: u64,
    /// Polls started and not yet ended, innermost last: (task, started at).
    open: Vec<(u64, u64)>,
    /// The ring's count of refused events when last summed: when it moves, a poll's end
    /// may be among them, and the open polls are forgotten rather than kept busy forever.
    overflowed: u64,
}

impl Cursor {
    /// The span to sum at `now_ns`: from where the last one ended to the last bucket
    /// edge before now. `None` when no whole bucket passed since.
    pub(crate) fn span(&self, now_ns: u64) -> Option<(u64, u64)> {
        let to_ns = now_ns / BUCKET_NS * BUCKET_NS;
        let from_ns = self.to_ns.max(to_ns.saturating_sub(MAX_SPAN_NS));
        (from_ns < to_ns).then_some((from_ns, to_ns))
    }

    /// Marks the span up to `to_ns` summed, and forgets threads no longer in the history.
    pub(crate) fn done(&mut self, to_ns: u64, alive: impl Fn(u32) -> bool) {
        self.to_ns = to_ns;
        self.threads.retain(|&number, _| alive(number));
    }

    /// `thread`'s cursor.
    pub(crate) fn thread(&mut self, thread: u32) -> &mut ThreadCursor {
        self.threads.entry(thread).or_default()
    }
}

/// Sums `events` (the thread's events from `cursor.next` on, oldest first; `first` is the
/// number of the first of them, which is past `cursor.next` when the history dropped
/// some) into the buckets of `from_ns..to_ns`. Events from `to_ns` on are left for the
/// next span; events before `from_ns` only open and close polls. `None` when the thread
/// polled nothing in the span.
pub(crate) fn summarise<'a>(
    thread: u32,
    cursor: &mut ThreadCursor,
    first: u64,
    events: impl IntoIterator<Item = &'a Event>,
    overflowed: u64,
    (from_ns, to_ns): (u64, u64),
) -> Option<v1::ThreadActivity> {
    if first > cursor.next {
        // Events were dropped before they were summed: where they left polls is unknown.
        cursor.open.clear();
        cursor.next = first;
    }
    let buckets = ((to_ns - from_ns) / BUCKET_NS) as usize;
    let mut sums = Sums::new(from_ns, to_ns, buckets);
    let mut last_ns = from_ns;
    for event in events {
        if event.at_ns >= to_ns {
            break;
        }
        cursor.next += 1;
        let at_ns = event.at_ns.max(from_ns);
        if let Some(&(task, _)) = cursor.open.last() {
            sums.busy(task, last_ns, at_ns);
        }
        last_ns = last_ns.max(at_ns);
        match event.kind {
            EventKind::PollStart if cursor.open.len() < MAX_NESTED => {
                cursor.open.push((event.task, event.at_ns));
            }
            EventKind::PollEnd => {
                // The innermost poll of that task; inner ones whose end was lost go too.
                if let Some(at) = cursor.open.iter().rposition(|&(t, _)| t == event.task) {
                    for (_, started_ns) in cursor.open.drain(at..) {
                        sums.poll(started_ns, event.at_ns);
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(&(task, _)) = cursor.open.last() {
        sums.busy(task, last_ns, to_ns);
    }
    for &(_, started_ns) in &cursor.open {
        sums.poll(started_ns, to_ns);
    }
    if overflowed != cursor.overflowed {
        cursor.overflowed = overflowed;
        cursor.open.clear();
    }
    sums.finish(thread)
}

/// The buckets of one thread's span being summed.
struct Sums {
    from_ns: u64,
    to_ns: u64,
    busy_ns: Vec<u64>,
    polls: Vec<u32>,
    /// Per bucket, each task's poll time in it (only buckets with polls get one).
    by_task: Vec<HashMap<u64, u64>>,
}

impl Sums {
    fn new(from_ns: u64, to_ns: u64, buckets: usize) -> Self {
        Self {
            from_ns,
            to_ns,
            busy_ns: vec![0; buckets],
            polls: vec![0; buckets],
            by_task: vec![HashMap::new(); buckets],
        }
    }

    /// The buckets `start..end` (clipped to the span) touches, with each one's overlap.
    fn overlaps(&self, start: u64, end: u64) -> impl Iterator<Item = (usize, u64)> {
        let (start, end) = (start.max(self.from_ns), end.min(self.to_ns));
        let from_ns = self.from_ns;
        let first = (start.saturating_sub(from_ns) / BUCKET_NS) as usize;
        let last = (end.saturating_sub(from_ns).saturating_sub(1) / BUCKET_NS) as usize;
        let range = if start < end { first..last + 1 } else { 0..0 };
        range.map(move |bucket| {
            let bucket_start = from_ns + bucket as u64 * BUCKET_NS;
            let overlap = end.min(bucket_start + BUCKET_NS) - start.max(bucket_start);
            (bucket, overlap)
        })
    }

    /// `task` polled innermost on the thread from `start` to `end`.
    fn busy(&mut self, task: u64, start: u64, end: u64) {
        for (bucket, overlap) in self.overlaps(start, end).collect::<Vec<_>>() {
            self.busy_ns[bucket] += overlap;
            *self.by_task[bucket].entry(task).or_default() += overlap;
        }
    }

    /// A poll that ran from `start` to `end`: counted in every bucket it touched. A poll
    /// of no length still counts, in the bucket it happened in.
    fn poll(&mut self, start: u64, end: u64) {
        let end = if end == start { end + 1 } else { end };
        for (bucket, _) in self.overlaps(start, end).collect::<Vec<_>>() {
            self.polls[bucket] = self.polls[bucket].saturating_add(1);
        }
    }

    /// The buckets from the first to the last that saw a poll; `None` when none did.
    fn finish(self, thread: u32) -> Option<v1::ThreadActivity> {
        let used = |b: usize| self.busy_ns[b] > 0 || self.polls[b] > 0;
        let first = (0..self.busy_ns.len()).find(|&b| used(b))?;
        let last = (0..self.busy_ns.len()).rfind(|&b| used(b))?;
        let top_task = self.by_task[first..=last]
            .iter()
            .map(|tasks| {
                // The lowest id among equals, so that the result does not hang on the
                // map's order.
                (tasks.iter())
                    .max_by_key(|&(&task, &ns)| (ns, std::cmp::Reverse(task)))
                    .map_or(0, |(&task, _)| task)
            })
            .collect();
        Some(v1::ThreadActivity {
            thread,
            from_ns: self.from_ns + first as u64 * BUCKET_NS,
            bucket_ns: BUCKET_NS,
            busy_ns: self.busy_ns[first..=last].to_vec(),
            polls: self.polls[first..=last].to_vec(),
            top_task,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn poll(task: u64, start_ms: u64, end_ms: u64) -> [Event; 2] {
        let event = |kind, at_ns| Event {
            kind,
            task,
            at_ns,
            other: 0,
        };
        [
            event(EventKind::PollStart, start_ms * MS),
            event(EventKind::PollEnd, end_ms * MS),
        ]
    }

    #[test]
    fn polls_are_summed_per_bucket_with_the_busiest_task_of_each() {
        let events: Vec<Event> = [poll(1, 1, 6), poll(2, 7, 9), poll(2, 22, 23)].concat();
        let mut cursor = ThreadCursor::default();
        let got = summarise(3, &mut cursor, 0, &events, 0, (0, 60 * MS)).unwrap();
        assert_eq!(got.thread, 3);
        assert_eq!((got.from_ns, got.bucket_ns), (0, BUCKET_NS));
        // The third bucket polled nothing and is left out.
        assert_eq!(got.busy_ns, [7 * MS, MS]);
        assert_eq!(got.polls, [2, 1]);
        assert_eq!(got.top_task, [1, 2]);
        assert_eq!(cursor.next, 6);
    }

    #[test]
    fn a_poll_across_a_bucket_edge_counts_in_both_buckets_for_its_part_in_each() {
        let events = poll(5, 30, 45);
        let mut cursor = ThreadCursor::default();
        let got = summarise(0, &mut cursor, 0, &events, 0, (0, 60 * MS)).unwrap();
        assert_eq!(got.from_ns, 20 * MS);
        assert_eq!(got.busy_ns, [10 * MS, 5 * MS]);
        assert_eq!(got.polls, [1, 1]);
        assert_eq!(got.top_task, [5, 5]);
    }

    #[test]
    fn a_poll_still_running_counts_up_to_the_span_end_and_goes_on_in_the_next() {
        let events = poll(8, 50, 70);
        let mut cursor = ThreadCursor::default();
        // The end, at 70 ms, is past this span: not summed yet.
        let first = summarise(0, &mut cursor, 0, &events, 0, (0, 60 * MS)).unwrap();
        assert_eq!(first.from_ns, 40 * MS);
        assert_eq!((first.busy_ns, first.polls), (vec![10 * MS], vec![1]));
        assert_eq!(cursor.next, 1);
        let rest = &events[cursor.next as usize..];
        let next = summarise(0, &mut cursor, 1, rest, 0, (60 * MS, 100 * MS)).unwrap();
        assert_eq!(next.from_ns, 60 * MS);
        assert_eq!((next.busy_ns, next.top_task), (vec![10 * MS], vec![8]));
        assert!(cursor.open.is_empty());
    }

    #[test]
    fn a_nested_poll_counts_for_the_inner_task_and_the_thread_is_busy_once() {
        let events = [
            poll(1, 0, 18)[0],
            poll(2, 2, 16)[0],
            poll(2, 2, 16)[1],
            poll(1, 0, 18)[1],
        ];
        let mut cursor = ThreadCursor::default();
        let got = summarise(0, &mut cursor, 0, &events, 0, (0, 20 * MS)).unwrap();
        assert_eq!(got.busy_ns, [18 * MS]);
        assert_eq!(got.polls, [2]);
        assert_eq!(got.top_task, [2]);
    }

    #[test]
    fn a_thread_that_polled_nothing_sends_nothing() {
        let mut cursor = ThreadCursor::default();
        assert_eq!(summarise(0, &mut cursor, 0, &[], 0, (0, 60 * MS)), None);
    }

    #[test]
    fn spans_end_on_a_bucket_edge_and_follow_each_other() {
        let mut cursor = Cursor::default();
        let (from, to) = cursor.span(MAX_SPAN_NS + 45 * MS).unwrap();
        assert_eq!((from, to), (40 * MS, MAX_SPAN_NS + 40 * MS));
        cursor.done(to, |_| true);
        assert_eq!(cursor.span(MAX_SPAN_NS + 55 * MS), None);
        assert_eq!(
            cursor.span(MAX_SPAN_NS + 61 * MS),
            Some((to, MAX_SPAN_NS + 60 * MS))
        );
    }
}
