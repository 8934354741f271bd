//! The flight recorder: what every thread did in the seconds before a stall, kept from the
//! threads' event rings (`ring.rs`) and cut into a window when the stall ends.
//!
//! Two sides, one owner each:
//! * App threads only ever push to their own ring. A thread takes a ring from the
//!   [`Flight`] at its first event (a fixed number of them, sized by `TASKSCOPE_FLIGHT`:
//!   a thread that comes when all are taken records nothing, and is counted), and gives it
//!   back, through the reader, when it exits.
//! * The probe's side drains the rings into a bounded recent history: the watchdog at each
//!   scan, so that a ring rarely laps its reader, and the aggregator right before it cuts a
//!   stall's window, so that the window holds every event up to the stall's end. Both go
//!   through one lock held only by them: the rings keep their one reader, and no app
//!   thread ever waits for it.
//!
//! The history is bounded in events across all threads: past it, the oldest event of any
//! thread goes first. A window keeps at most its share of the budget, its oldest events
//! left out first, and says how many.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use taskscope_api::v1;

use crate::base::flight_budget::FlightBudget;
use crate::tasks::activity;
use crate::tasks::ring::{Event, EventKind, EventRing};
use crate::tasks::threads::{RingSource, ThreadSlot};

/// The flight recorder's state on the probe's side, and the rings it hands out.
pub(crate) struct Flight {
    budget: Option<FlightBudget>,
    /// Rings made so far (never more than the budget pays for).
    made: AtomicUsize,
    /// Rings given back by threads that exited, drained, for the next thread.
    free: Mutex<Vec<Arc<EventRing>>>,
    /// Threads that came when every ring was taken.
    pub(crate) unrecorded_threads: AtomicU64,
    history: Mutex<History>,
}

/// The reader's side: the recent events of every thread it has drained.
#[derive(Default)]
struct History {
    threads: HashMap<u32, ThreadHistory>,
    /// Events held, across threads.
    held: usize,
    /// Events lost (written over before a drain) by rings of threads that have exited.
    overflowed_before: u64,
    /// Threads that exited and whose rings were given back: their slots still name the
    /// ring, which another thread now writes.
    retired: std::collections::HashSet<u32>,
}

impl History {
    /// Events lost so far by the ring of each live thread (a retired thread's ring is
    /// another thread's now, and its losses were counted when it exited).
    fn overflowed_now(&self, threads: &[Arc<ThreadSlot>]) -> HashMap<u32, u64> {
        threads
            .iter()
            .filter(|slot| !self.retired.contains(&slot.number))
            .filter_map(|slot| Some((slot.number, slot.ring()?.overflowed())))
            .collect()
    }
}

struct ThreadHistory {
    name: Box<str>,
    events: VecDeque<Event>,
    /// Events the thread's ring lost, counted when it exited (until then the ring
    /// counts them).
    overflowed_at_exit: u64,
    /// Events evicted from the front so far: the number of the first one held, which
    /// the activity summaries count from (`activity.rs`).
    evicted: u64,
}

impl Flight {
    /// The recorder for `budget`; `None`: off, and no thread gets a ring.
    pub(crate) fn new(budget: Option<FlightBudget>) -> Self {
        Self {
            budget,
            made: AtomicUsize::new(0),
            free: Mutex::new(Vec::new()),
            unrecorded_threads: AtomicU64::new(0),
            history: Mutex::new(History::default()),
        }
    }

    /// Whether the recorder runs (`TASKSCOPE_FLIGHT` is not `off`).
    pub(crate) fn is_on(&self) -> bool {
        self.budget.is_some()
    }

    /// Copies every thread's new events into the history (and gives back the rings of
    /// threads that exited). The probe's threads only; never an app thread.
    pub(crate) fn drain(&self, threads: &[Arc<ThreadSlot>]) {
        let Some(budget) = self.budget else { return };
        let mut guard = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let history = &mut *guard;
        for slot in threads {
            let Some(ring) = slot.ring() else { continue };
            if history.retired.contains(&slot.number) {
                continue;
            }
            // Read before the drain: once it says so, every event of the thread is in
            // the ring (the thread's last store, with release ordering).
            let exited = slot.has_exited();
            let entry = ThreadHistory::of(&mut history.threads, slot);
            let before = entry.events.len();
            ring.drain(|event| entry.events.push_back(event));
            history.held += entry.events.len() - before;
            if exited {
                let lost = ring.overflowed();
                entry.overflowed_at_exit = lost;
                history.retired.insert(slot.number);
                history.overflowed_before += lost;
                ring.reset_overflowed();
                self.free
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(ring.clone());
            }
        }
        history.evict_to(budget.history_events());
    }

    /// An event of `slot`'s thread seen from one of the probe's threads instead of written
    /// by the thread itself: the runs of a `block_on` body that no poll hook marks, which
    /// the watchdog watches from outside (`detect/body_watch.rs`). Kept in the thread's
    /// history as if drained from its ring, never before the last event held for the
    /// thread (the watchdog's look may come a moment after an event the thread wrote), so
    /// that the history stays in time order. The watchdog's thread, before its drain.
    pub(crate) fn record_from_outside(&self, slot: &ThreadSlot, event: Event) {
        let Some(budget) = self.budget else { return };
        let mut guard = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let history = &mut *guard;
        if history.retired.contains(&slot.number) {
            return;
        }
        let thread = ThreadHistory::of(&mut history.threads, slot);
        let last_ns = thread.events.back().map_or(0, |e| e.at_ns);
        thread.events.push_back(Event {
            at_ns: event.at_ns.max(last_ns),
            ..event
        });
        history.held += 1;
        history.evict_to(budget.history_events());
    }

    /// The window around a stall on `thread` from `from_ns` to `to_ns`: every thread's
    /// events in that span, drained up to now first. `None` when the recorder is off or
    /// has nothing from that span.
    pub(crate) fn window(
        &self,
        threads: &[Arc<ThreadSlot>],
        from_ns: u64,
        to_ns: u64,
    ) -> Option<v1::FlightWindow> {
        let budget = self.budget?;
        self.drain(threads);
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let overflowed_now = history.overflowed_now(threads);
        let mut in_span: Vec<(u32, &ThreadHistory, Vec<Event>)> = history
            .threads
            .iter()
            .map(|(&number, thread)| {
                let events = thread
                    .events
                    .iter()
                    .filter(|e| (from_ns..=to_ns).contains(&e.at_ns))
                    .copied()
                    .collect::<Vec<_>>();
                (number, thread, events)
            })
            .filter(|(_, _, events)| !events.is_empty())
            .collect();
        if in_span.is_empty() {
            return None;
        }
        // Over the window's share: start later, for every thread alike.
        let total: usize = in_span.iter().map(|(_, _, e)| e.len()).sum();
        let mut from_ns = from_ns;
        let mut left_out = 0;
        if total > budget.window_events() {
            let mut times: Vec<u64> = in_span
                .iter()
                .flat_map(|(_, _, e)| e.iter().map(|e| e.at_ns))
                .collect();
            times.sort_unstable();
            from_ns = times[total - budget.window_events()];
            for (_, _, events) in &mut in_span {
                let before = events.len();
                events.retain(|e| e.at_ns >= from_ns);
                left_out += (before - events.len()) as u64;
            }
        }
        in_span.sort_by_key(|(number, _, _)| *number);
        let threads = in_span
            .into_iter()
            .filter(|(_, _, events)| !events.is_empty())
            .map(|(number, thread, events)| {
                let overflowed = overflowed_now
                    .get(&number)
                    .map_or(thread.overflowed_at_exit, |&now| now);
                columns(number, &thread.name, &events, from_ns, overflowed)
            })
            .collect();
        Some(v1::FlightWindow {
            from_ns,
            to_ns,
            threads,
            events_left_out: left_out,
        })
    }

    /// Every recorded thread's polls from where the last call stopped (`cursor`) to the
    /// last bucket edge before now, summed into buckets (`activity.rs`). Reads the
    /// history, drained up to now first, and takes nothing from it: stall windows cut
    /// later still find every event. Empty when the recorder is off.
    pub(crate) fn activity(
        &self,
        threads: &[Arc<ThreadSlot>],
        cursor: &mut activity::Cursor,
        now_ns: u64,
    ) -> Vec<v1::ThreadActivity> {
        if self.budget.is_none() {
            return Vec::new();
        }
        let Some(span) = cursor.span(now_ns) else {
            return Vec::new();
        };
        self.drain(threads);
        // The events not yet summed, copied out so that the watchdog's drains do not wait
        // for the sums.
        let pending: Vec<(u32, u64, Vec<Event>, u64)> = {
            let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
            let overflowed_now = history.overflowed_now(threads);
            let pending = (history.threads.iter())
                .map(|(&number, thread)| {
                    let next = cursor.thread(number).next;
                    let first = next.max(thread.evicted);
                    let skip = ((first - thread.evicted) as usize).min(thread.events.len());
                    let overflowed = overflowed_now
                        .get(&number)
                        .map_or(thread.overflowed_at_exit, |&now| now);
                    let events = thread.events.range(skip..).copied().collect();
                    (number, first, events, overflowed)
                })
                .collect();
            cursor.done(span.1, |number| history.threads.contains_key(&number));
            pending
        };
        let mut summaries: Vec<v1::ThreadActivity> = pending
            .into_iter()
            .filter_map(|(number, first, events, overflowed)| {
                let thread = cursor.thread(number);
                activity::summarise(number, thread, first, &events, overflowed, span)
            })
            .collect();
        summaries.sort_by_key(|a| a.thread);
        summaries
    }

    /// Events lost by full rings so far (written over before a drain), across all threads.
    pub(crate) fn overflowed(&self, threads: &[Arc<ThreadSlot>]) -> u64 {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let live: u64 = threads
            .iter()
            .filter(|slot| !history.retired.contains(&slot.number))
            .filter_map(|slot| Some(slot.ring()?.overflowed()))
            .sum();
        history.overflowed_before + live
    }
}

impl ThreadHistory {
    /// `slot`'s thread's history in `threads`, begun empty at its first event.
    fn of<'a>(threads: &'a mut HashMap<u32, ThreadHistory>, slot: &ThreadSlot) -> &'a mut Self {
        threads.entry(slot.number).or_insert_with(|| ThreadHistory {
            name: slot.name.clone(),
            events: VecDeque::new(),
            overflowed_at_exit: 0,
            evicted: 0,
        })
    }
}

impl RingSource for Flight {
    /// A ring for a thread's events, at its first one: a given-back ring, or a new one
    /// while the budget allows. Runs once per thread, on that thread.
    fn take_ring(&self) -> Option<Arc<EventRing>> {
        let budget = self.budget?;
        if let Some(ring) = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Some(ring);
        }
        let made = self.made.fetch_add(1, Ordering::Relaxed);
        if made >= budget.max_rings() {
            self.made.fetch_sub(1, Ordering::Relaxed);
            self.unrecorded_threads.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Arc::new(EventRing::new(budget.ring_events())))
    }
}

impl History {
    /// Drops the oldest events, whichever thread holds them, until at most `limit` are held.
    fn evict_to(&mut self, limit: usize) {
        while self.held > limit {
            let oldest = self
                .threads
                .values_mut()
                .filter(|t| !t.events.is_empty())
                .min_by_key(|t| t.events.front().map(|e| e.at_ns));
            let Some(thread) = oldest else { break };
            // In batches, so that eviction costs little per event.
            let excess = self.held - limit;
            let dropped = excess.min(thread.events.len()).min(1024);
            thread.events.drain(..dropped);
            thread.evicted += dropped as u64;
            self.held -= dropped;
        }
        let retired = &self.retired;
        (self.threads).retain(|number, t| !(retired.contains(number) && t.events.is_empty()));
    }
}

/// One thread's events as the protocol's columns.
fn columns(
    number: u32,
    name: &str,
    events: &[Event],
    from_ns: u64,
    overflowed: u64,
) -> v1::FlightThread {
    let mut thread = v1::FlightThread {
        thread: number,
        name: name.to_owned(),
        overflowed,
        ..Default::default()
    };
    let mut last = from_ns;
    for event in events {
        thread.kinds.push(kind_to_proto(event.kind) as i32);
        thread.task_ids.push(event.task);
        thread.at_deltas_ns.push(event.at_ns.saturating_sub(last));
        thread.other_task_ids.push(event.other);
        last = last.max(event.at_ns);
    }
    thread
}

fn kind_to_proto(kind: EventKind) -> v1::FlightEventKind {
    match kind {
        EventKind::PollStart => v1::FlightEventKind::FlightEventPollStart,
        EventKind::PollEnd => v1::FlightEventKind::FlightEventPollEnd,
        EventKind::Spawn => v1::FlightEventKind::FlightEventSpawn,
        EventKind::End => v1::FlightEventKind::FlightEventEnd,
        EventKind::Wake => v1::FlightEventKind::FlightEventWake,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::threads;

    const MS: u64 = 1_000_000;

    fn event(kind: EventKind, at_ms: u64) -> Event {
        Event {
            kind,
            task: 7,
            at_ns: at_ms * MS,
            other: 0,
        }
    }

    /// A slot of a thread that never records an event of its own.
    fn silent_thread() -> Arc<ThreadSlot> {
        std::thread::spawn(|| threads::with_local(|l| l.thread_slot()).unwrap())
            .join()
            .unwrap()
    }

    #[test]
    fn a_run_seen_from_outside_is_summed_and_windowed_like_a_poll() {
        let flight = Flight::new(Some(FlightBudget::DEFAULT));
        let slot = silent_thread();
        flight.record_from_outside(&slot, event(EventKind::PollStart, 10));
        flight.record_from_outside(&slot, event(EventKind::PollEnd, 50));
        let threads = [slot.clone()];

        let mut cursor = activity::Cursor::default();
        let [summary] = &flight.activity(&threads, &mut cursor, 100 * MS)[..] else {
            panic!("one thread's summary")
        };
        assert_eq!(summary.thread, slot.number);
        assert_eq!(summary.busy_ns, [10 * MS, 20 * MS, 10 * MS]);
        assert_eq!(summary.top_task, [7, 7, 7]);

        let window = flight.window(&threads, 0, 100 * MS).unwrap();
        assert_eq!(window.threads.len(), 1);
        assert_eq!(window.threads[0].task_ids, [7, 7]);
    }

    #[test]
    fn an_event_seen_from_outside_never_goes_before_what_the_history_holds() {
        let flight = Flight::new(Some(FlightBudget::DEFAULT));
        let slot = silent_thread();
        flight.record_from_outside(&slot, event(EventKind::PollStart, 60));
        flight.record_from_outside(&slot, event(EventKind::PollEnd, 55));
        let window = flight.window(&[slot], 0, 100 * MS).unwrap();
        assert_eq!(window.threads[0].at_deltas_ns, [60 * MS, 0]);
    }

    #[test]
    fn nothing_is_kept_with_the_recorder_off() {
        let flight = Flight::new(None);
        let slot = silent_thread();
        flight.record_from_outside(&slot, event(EventKind::PollStart, 10));
        assert!(flight.window(&[slot], 0, 100 * MS).is_none());
    }

    /// A thread far busier than its ring between two drains: what the window keeps is the
    /// thread's last events, up to the poll that stalled, and the loss is counted.
    #[test]
    fn a_busy_thread_keeps_its_last_events_before_a_stall_and_counts_the_rest() {
        let flight = Arc::new(Flight::new(Some(FlightBudget::DEFAULT)));
        let ring_events = FlightBudget::DEFAULT.ring_events() as u64;
        let polls = 3 * ring_events;
        let slot = {
            let flight = flight.clone();
            std::thread::spawn(move || {
                threads::with_local(|l| {
                    let slot = l.thread_slot();
                    for n in 0..polls {
                        l.record(&*flight, event(EventKind::PollStart, 2 * n));
                        l.record(&*flight, event(EventKind::PollEnd, 2 * n + 1));
                    }
                    let stalled = Event {
                        task: 99,
                        ..event(EventKind::PollStart, 2 * polls)
                    };
                    l.record(&*flight, stalled);
                    slot
                })
                .unwrap()
            })
            .join()
            .unwrap()
        };
        let window = flight.window(&[slot], 0, u64::MAX).unwrap();
        let [thread] = &window.threads[..] else {
            panic!("one thread: {window:?}")
        };
        assert_eq!(thread.task_ids.len() as u64, ring_events);
        assert_eq!(
            thread.task_ids.last(),
            Some(&99),
            "the stalled poll's start is kept"
        );
        assert_eq!(thread.overflowed, 2 * polls + 1 - ring_events);
    }
}
