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
//! The history is bounded in events across all threads: past it, the thread holding the
//! most gives up its oldest events, so that busy threads make room with their own past and
//! a thread that went quiet keeps what it did last (a stalled thread writes nothing until
//! its poll returns: its last moments before the stall are what its window is for). A
//! window keeps at most its share of the budget: half of it for the stalled thread's last
//! events, the rest for the others, their oldest left out first, every thread alike. Each
//! thread says where its events become complete when that is later than the window's
//! start, and the window how many it left out.

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
    /// Threads in a stall whose window is not cut yet: their last events before it, set
    /// aside (see [`Flight::hold_before`]).
    held_for_stalls: HashMap<u32, HeldForStall>,
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

/// A stalled thread's last events before its stall, set aside from the history until the
/// stall's window is cut.
struct HeldForStall {
    start_ns: u64,
    /// Taken at the first drain after the hold (the thread's ring holds its last events
    /// until then); `None` before it.
    events: Option<Vec<Event>>,
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
    /// The time of the newest event evicted (0: none): the thread's events held are
    /// complete only from there on.
    evicted_until_ns: u64,
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
                history.held_for_stalls.remove(&slot.number);
                history.overflowed_before += lost;
                ring.reset_overflowed();
                self.free
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(ring.clone());
            }
        }
        history.set_aside(budget.window_events());
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

    /// A stall began on `thread` at `stall_start_ns`: the thread's last events before it
    /// (as many as a window keeps of a stalled thread) are set aside at the next drain and
    /// kept until the stall's window is cut, however busy the thread is again once the
    /// stall ends. The window is cut a moment after that end, by which time a busy thread
    /// may have written more than the history keeps of it. The watchdog's thread, when it
    /// first sees the stall (the stalled thread writes nothing until its poll returns, so
    /// its last events are still in its ring or the history).
    pub(crate) fn hold_before(&self, thread: u32, stall_start_ns: u64) {
        if self.budget.is_none() {
            return;
        }
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let held = HeldForStall {
            start_ns: stall_start_ns,
            events: None,
        };
        history.held_for_stalls.insert(thread, held);
    }

    /// The stall on `thread` gets no window after all: what was set aside for it goes.
    pub(crate) fn let_go(&self, thread: u32) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.held_for_stalls.remove(&thread);
    }

    /// The window from `from_ns` to `to_ns` around a stall on thread `stalled` (`None`:
    /// no stall's, what the recorder holds now): every thread's events in that span,
    /// drained up to now first. `None` when the recorder is off or has nothing from that
    /// span.
    pub(crate) fn window(
        &self,
        threads: &[Arc<ThreadSlot>],
        from_ns: u64,
        to_ns: u64,
        stalled: Option<u32>,
    ) -> Option<v1::FlightWindow> {
        let budget = self.budget?;
        self.drain(threads);
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let held = stalled.and_then(|thread| {
            let held = history.held_for_stalls.remove(&thread)?;
            Some((thread, held.start_ns, held.events?))
        });
        let overflowed_now = history.overflowed_now(threads);
        let in_span_of = |e: &&Event| (from_ns..=to_ns).contains(&e.at_ns);
        let mut in_span: Vec<InSpan> = history
            .threads
            .iter()
            .map(|(&number, thread)| match &held {
                // What was set aside before the stall, then what the history holds since.
                Some((stalled, start_ns, set_aside)) if *stalled == number => InSpan {
                    number,
                    thread,
                    events: (set_aside.iter())
                        .chain(thread.events.iter().filter(|e| e.at_ns > *start_ns))
                        .filter(in_span_of)
                        .copied()
                        .collect(),
                    complete_from_ns: 0,
                },
                _ => InSpan {
                    number,
                    thread,
                    events: thread.events.iter().filter(in_span_of).copied().collect(),
                    complete_from_ns: thread.evicted_until_ns,
                },
            })
            .filter(|t| !t.events.is_empty())
            .collect();
        if in_span.is_empty() {
            return None;
        }
        let left_out = fit(&mut in_span, budget.window_events(), stalled);
        in_span.sort_by_key(|t| t.number);
        // Cut, the window starts at its first event kept: older consumers draw every
        // thread from there.
        let from_ns = match left_out {
            0 => from_ns,
            _ => (in_span.iter())
                .filter_map(|t| t.events.first().map(|e| e.at_ns))
                .min()
                .map_or(from_ns, |first| first.max(from_ns)),
        };
        let threads = in_span
            .into_iter()
            .filter(|t| !t.events.is_empty())
            .map(|t| {
                let overflowed = overflowed_now
                    .get(&t.number)
                    .map_or(t.thread.overflowed_at_exit, |&now| now);
                let mut columns = columns(t.number, &t.thread.name, &t.events, from_ns, overflowed);
                if t.complete_from_ns > from_ns {
                    columns.complete_from_ns = t.complete_from_ns;
                }
                columns
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
            evicted_until_ns: 0,
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
    /// Sets aside the last events before each newly held stall (see
    /// [`Flight::hold_before`]), as many as half a window keeps, and no more in all than
    /// one window (`window_events`).
    fn set_aside(&mut self, window_events: usize) {
        let mut room = window_events.saturating_sub(
            (self.held_for_stalls.values())
                .filter_map(|held| Some(held.events.as_ref()?.len()))
                .sum(),
        );
        for (number, held) in self.held_for_stalls.iter_mut() {
            if held.events.is_some() {
                continue;
            }
            let events = self.threads.get(number).map_or(Vec::new(), |thread| {
                let before = thread.events.partition_point(|e| e.at_ns <= held.start_ns);
                let kept = before.min(window_events / 2).min(room);
                thread
                    .events
                    .range(before - kept..before)
                    .copied()
                    .collect()
            });
            room -= events.len();
            held.events = Some(events);
        }
    }

    /// Drops events until at most `limit` are held: the oldest ones of the threads that
    /// hold the most, down to one level for all of them (see the module doc for why not the
    /// oldest of all).
    fn evict_to(&mut self, limit: usize) {
        if self.held > limit {
            let level = fair_level(self.threads.values().map(|t| t.events.len()), limit);
            for thread in self.threads.values_mut() {
                let dropped = thread.events.len().saturating_sub(level);
                if let Some(last) = thread.events.drain(..dropped).next_back() {
                    thread.evicted_until_ns = thread.evicted_until_ns.max(last.at_ns);
                }
                thread.evicted += dropped as u64;
                self.held -= dropped;
            }
        }
        let retired = &self.retired;
        (self.threads).retain(|number, t| !(retired.contains(number) && t.events.is_empty()));
    }
}

/// The most events each thread may keep so that all of them together keep at most
/// `limit`, when a thread with fewer keeps all of its own and leaves the rest to the others
/// (water-filling).
fn fair_level(lengths: impl Iterator<Item = usize>, limit: usize) -> usize {
    let mut lengths: Vec<usize> = lengths.collect();
    lengths.sort_unstable();
    let mut left = limit;
    for (index, &length) in lengths.iter().enumerate() {
        let share = left / (lengths.len() - index);
        if length > share {
            return share;
        }
        left -= length;
    }
    usize::MAX
}

/// One thread's events within a window being cut.
struct InSpan<'a> {
    number: u32,
    thread: &'a ThreadHistory,
    events: Vec<Event>,
    /// Where its events are complete from (0: the window's start).
    complete_from_ns: u64,
}

/// Leaves events out of `threads` until at most `limit` are left, and returns how many it
/// left out. The stalled thread keeps its last events, up to half the limit: what it did
/// right before the stall, however busy the others were while it was stuck. The others
/// share the rest by time, every thread alike: their oldest events go first. A thread cut
/// so is complete from its first event kept.
fn fit(threads: &mut [InSpan<'_>], limit: usize, stalled: Option<u32>) -> u64 {
    let total: usize = threads.iter().map(|t| t.events.len()).sum();
    if total <= limit {
        return 0;
    }
    let mut left_out = 0;
    let mut limit = limit;
    if let Some(thread) = threads.iter_mut().find(|t| Some(t.number) == stalled) {
        let kept = thread.events.len().min(limit / 2);
        left_out += cut_to_last(thread, kept);
        limit -= kept;
    }
    let others = || threads.iter().filter(|t| Some(t.number) != stalled);
    let total: usize = others().map(|t| t.events.len()).sum();
    if total > limit {
        let mut times: Vec<u64> = others()
            .flat_map(|t| t.events.iter().map(|e| e.at_ns))
            .collect();
        times.sort_unstable();
        let cut_ns = times[total - limit];
        for thread in threads.iter_mut().filter(|t| Some(t.number) != stalled) {
            let keep = thread.events.iter().filter(|e| e.at_ns >= cut_ns).count();
            left_out += cut_to_last(thread, keep);
        }
    }
    left_out
}

/// Keeps `thread`'s last `kept` events; returns how many it left out.
fn cut_to_last(thread: &mut InSpan<'_>, kept: usize) -> u64 {
    let cut = thread.events.len() - kept;
    if cut > 0 {
        thread.events.drain(..cut);
        if let Some(first) = thread.events.first() {
            thread.complete_from_ns = thread.complete_from_ns.max(first.at_ns);
        }
    }
    cut as u64
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
    use taskscope_api::flight::events;

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

        let window = flight.window(&threads, 0, 100 * MS, None).unwrap();
        assert_eq!(window.threads.len(), 1);
        assert_eq!(window.threads[0].task_ids, [7, 7]);
    }

    #[test]
    fn an_event_seen_from_outside_never_goes_before_what_the_history_holds() {
        let flight = Flight::new(Some(FlightBudget::DEFAULT));
        let slot = silent_thread();
        flight.record_from_outside(&slot, event(EventKind::PollStart, 60));
        flight.record_from_outside(&slot, event(EventKind::PollEnd, 55));
        let window = flight.window(&[slot], 0, 100 * MS, None).unwrap();
        assert_eq!(window.threads[0].at_deltas_ns, [60 * MS, 0]);
    }

    #[test]
    fn nothing_is_kept_with_the_recorder_off() {
        let flight = Flight::new(None);
        let slot = silent_thread();
        flight.record_from_outside(&slot, event(EventKind::PollStart, 10));
        assert!(flight.window(&[slot], 0, 100 * MS, None).is_none());
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
        let stalled = slot.number;
        let window = flight.window(&[slot], 0, u64::MAX, Some(stalled)).unwrap();
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

    /// The smallest recorder: 2,048 events of history, windows of 1,024.
    fn small() -> Flight {
        Flight::new(Some(FlightBudget::clamped(0)))
    }

    /// `n` polls of `task` on `slot`'s thread, one a millisecond from `from_ms` on.
    fn polls(flight: &Flight, slot: &ThreadSlot, task: u64, from_ms: u64, n: u64) {
        for i in 0..n {
            let at_ns = (from_ms + i) * MS;
            for kind in [EventKind::PollStart, EventKind::PollEnd] {
                let event = Event {
                    kind,
                    task,
                    at_ns,
                    other: 0,
                };
                flight.record_from_outside(slot, event);
            }
        }
    }

    /// The smallest recorder, and two threads: one that polled task 1 once a millisecond
    /// for 100 ms, then started the poll of task 2 that stalls; one that has polled
    /// nothing yet.
    fn stalled_after_100_polls() -> (Flight, Arc<ThreadSlot>, Arc<ThreadSlot>) {
        let flight = small();
        let (stalled, busy) = (silent_thread(), silent_thread());
        polls(&flight, &stalled, 1, 0, 100);
        let stall_start = Event {
            task: 2,
            ..event(EventKind::PollStart, 100)
        };
        flight.record_from_outside(&stalled, stall_start);
        (flight, stalled, busy)
    }

    /// A thread stalls after 100 polls while its neighbour polls on for far longer than
    /// the history holds: the history makes room with the neighbour's past, and the window
    /// keeps the stalled thread's last moments, up to the stalled poll's start.
    #[test]
    fn a_stalled_threads_last_events_outlive_a_busy_neighbours() {
        let (flight, stalled, busy) = stalled_after_100_polls();
        polls(&flight, &busy, 3, 0, 5_000);
        flight.record_from_outside(&stalled, event(EventKind::PollEnd, 5_000));

        let threads = [stalled.clone(), busy.clone()];
        let window = flight
            .window(&threads, 0, 5_000 * MS, Some(stalled.number))
            .unwrap();
        let of = |slot: &ThreadSlot| {
            (window.threads.iter())
                .find(|t| t.thread == slot.number)
                .expect("both threads are in the window")
        };
        let on_stalled: Vec<_> = events(&window, of(&stalled)).collect();
        assert_eq!(on_stalled.len(), 202, "all its events");
        assert!(
            on_stalled
                .iter()
                .any(|e| e.task_id == 2 && e.at_ns == 100 * MS),
            "the stalled poll's start"
        );
        assert_eq!(of(&stalled).complete_from_ns, 0, "complete from the start");
        let on_busy: Vec<_> = events(&window, of(&busy)).collect();
        let first_kept = on_busy.first().unwrap().at_ns;
        assert_eq!(of(&busy).complete_from_ns, first_kept, "its past left out");
        assert!(window.from_ns < first_kept);
        assert_eq!(
            on_stalled.len() + on_busy.len(),
            1_024,
            "the window's budget"
        );
        assert!(window.events_left_out > 0);
    }

    /// Without a stall to favour, a window over its budget leaves out every thread's
    /// oldest events alike, and each thread says from where it is complete.
    #[test]
    fn a_window_over_its_budget_starts_later_for_every_thread_alike() {
        let flight = small();
        let (a, b) = (silent_thread(), silent_thread());
        polls(&flight, &a, 1, 0, 600);
        polls(&flight, &b, 2, 0, 600);
        let window = flight.window(&[a, b], 0, 600 * MS, None).unwrap();
        // The history kept 2,048 of the 2,400 events, the window half of those.
        assert_eq!(window.events_left_out, 2_048 - 1_024);
        for thread in &window.threads {
            let first = events(&window, thread).next().unwrap().at_ns;
            assert!(first >= 340 * MS, "{first}");
            assert!(thread.complete_from_ns == 0 || thread.complete_from_ns == first);
        }
    }

    #[test]
    fn the_fair_level_leaves_small_threads_whole_and_evens_out_the_rest() {
        assert_eq!(fair_level([10, 1_000, 5_000].into_iter(), 2_010), 1_000);
        assert_eq!(fair_level([10, 3_000, 5_000].into_iter(), 2_010), 1_000);
        assert_eq!(fair_level([10, 20].into_iter(), 100), usize::MAX);
        assert_eq!(fair_level([100, 100, 100].into_iter(), 150), 50);
    }

    /// The window is cut a moment after the stall ends, and a busy thread may by then have
    /// written more than the history keeps of it: held for its stall, its last events
    /// before the stall are still there, and once the window is cut they are no longer
    /// held.
    #[test]
    fn a_stalled_threads_last_events_are_held_until_its_window_is_cut() {
        let (flight, stalled, busy) = stalled_after_100_polls();
        flight.hold_before(stalled.number, 100 * MS);
        // The watchdog drains at the end of the scan that saw the stall.
        flight.drain(&[stalled.clone(), busy.clone()]);
        polls(&flight, &busy, 3, 100, 300);
        flight.record_from_outside(&stalled, event(EventKind::PollEnd, 400));
        polls(&flight, &stalled, 4, 401, 3_000);

        let threads = [stalled.clone(), busy.clone()];
        let window = flight
            .window(&threads, 0, 400 * MS, Some(stalled.number))
            .unwrap();
        let on_stalled: Vec<_> = (window.threads.iter())
            .find(|t| t.thread == stalled.number)
            .map(|t| events(&window, t).collect())
            .expect("the stalled thread is in the window");
        assert!(
            on_stalled
                .iter()
                .any(|e| e.task_id == 2 && e.at_ns == 100 * MS),
            "the stalled poll's start"
        );
        let before = on_stalled.iter().filter(|e| e.at_ns < 100 * MS).count();
        assert_eq!(before, 200, "every event before it");

        let history = flight.history.lock().unwrap();
        assert!(history.held_for_stalls.is_empty(), "no longer held");
    }
}
