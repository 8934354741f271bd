//! A thread's own ring of compact events (polls, spawns, ends, wakes), written by that
//! thread alone and copied out by one reader on the probe's side: the flight recorder's
//! raw material.
//!
//! The app's thread pays for an event with a few plain stores and no lock, no allocation,
//! no look-up of any per-task structure and no read of the reader's memory: the event says
//! only which task, when, and one word more. Single producer, single consumer, and the
//! writer never waits: **a full ring overwrites its oldest events**. A flight recorder is
//! read after the fact, about the moments just before a stall, so those are the events it
//! must keep; a ring that refused events once full would keep the oldest ones of each
//! drain instead, and lose exactly the moments before the stall on a busy thread.
//!
//! * The writer owns `head`, the number of events ever written. Each slot carries its own
//!   sequence word, a seqlock of one slot: before writing event `i` the writer marks the
//!   slot as being written (`2i + 1`), then writes the event's words, then marks it done
//!   (`2i + 2`, release), then publishes `head = i + 1` (release).
//! * The reader owns `tail`, the number of events it has dealt with. It loads `head`
//!   (acquire); events older than `head - capacity` have been overwritten and are counted
//!   as lost without being looked at. For each other event it reads the slot's sequence
//!   (acquire), the words, then the sequence again after an acquire fence: the copy is
//!   whole only when both readings say "event `i`, done". A slot the writer rewrote in the
//!   meantime fails that test and is counted as lost too, so a torn event is never handed
//!   on. Sequence values only grow, so a later event in the same slot never passes for an
//!   earlier one.
//! * What was lost is counted by the reader ([`EventRing::overflowed`]), never guessed:
//!   every event is either handed to the reader once, whole and in order, or counted once.
//!
//! The slots are atomics rather than plain memory so that the protocol is checked by loom
//! as it runs (`tests/loom_models.rs`); relaxed stores cost what plain stores do, and the
//! fences are free on x86.

use crate::base::sync::atomic::{AtomicU64, Ordering, fence};

/// What happened. Kept in the top byte of an event's first word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum EventKind {
    /// A poll of `task` started on this thread.
    PollStart = 1,
    /// A poll of `task` returned on this thread.
    PollEnd = 2,
    /// `task` was spawned on this thread; `other` is the task polling here then (0: none).
    Spawn = 3,
    /// `task` ended (its end was seen on this thread).
    End = 4,
    /// `task` was woken from this thread; `other` is the task polling here then (0: none).
    Wake = 5,
}

impl EventKind {
    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::PollStart,
            2 => Self::PollEnd,
            3 => Self::Spawn,
            4 => Self::End,
            5 => Self::Wake,
            _ => return None,
        })
    }
}

/// The bits of an event's first word that carry [`Event::other`].
const OTHER_MASK: u64 = (1 << 56) - 1;

/// One event as a thread records it: three words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) kind: EventKind,
    pub(crate) task: u64,
    pub(crate) at_ns: u64,
    /// The related task, where the kind names one (kept to 56 bits: tokio's ids count up
    /// from 1 and never get there).
    pub(crate) other: u64,
}

/// One slot: its sequence word and the event's three words (32 bytes, two to a cache line
/// and never across one).
struct Slot {
    /// `2i + 1` while event `i` is being written, `2i + 2` once it is whole; 0 before the
    /// first.
    sequence: AtomicU64,
    head: AtomicU64,
    task: AtomicU64,
    at_ns: AtomicU64,
}

/// Event `index` is being written into its slot.
fn writing(index: u64) -> u64 {
    index.wrapping_mul(2).wrapping_add(1)
}

/// Event `index` is whole in its slot.
fn written(index: u64) -> u64 {
    index.wrapping_mul(2).wrapping_add(2)
}

/// A value alone on its cache line, so that the writer's and the reader's indices never
/// share one.
#[repr(align(64))]
struct Padded<T>(T);

/// The ring (see the module doc for its protocol).
pub(crate) struct EventRing {
    /// Events written so far. Written by the writer only.
    head: Padded<AtomicU64>,
    /// Events the reader has dealt with (copied or counted lost), and those it lost.
    /// Written by the reader only.
    tail: Padded<AtomicU64>,
    lost: AtomicU64,
    slots: Box<[Slot]>,
    mask: u64,
}

impl std::fmt::Debug for EventRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRing")
            .field("capacity", &self.capacity())
            .field("overflowed", &self.overflowed())
            .finish_non_exhaustive()
    }
}

impl EventRing {
    /// A ring of `capacity` events, rounded up to a power of two (at least 2).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2).next_power_of_two();
        let slots = (0..capacity)
            .map(|_| Slot {
                sequence: AtomicU64::new(0),
                head: AtomicU64::new(0),
                task: AtomicU64::new(0),
                at_ns: AtomicU64::new(0),
            })
            .collect();
        Self {
            head: Padded(AtomicU64::new(0)),
            tail: Padded(AtomicU64::new(0)),
            lost: AtomicU64::new(0),
            slots,
            mask: capacity as u64 - 1,
        }
    }

    /// How many events the ring holds.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Appends `event`, over the oldest one when the ring is full. The writing thread
    /// only; never waits.
    #[inline]
    pub(crate) fn push(&self, event: Event) {
        let index = self.head.0.load(Ordering::Relaxed);
        let slot = &self.slots[(index & self.mask) as usize];
        slot.sequence.store(writing(index), Ordering::Relaxed);
        // A reader that sees any of the words below also sees the slot marked as being
        // written when it reads the sequence again.
        fence(Ordering::Release);
        let first = ((event.kind as u64) << 56) | (event.other & OTHER_MASK);
        slot.head.store(first, Ordering::Relaxed);
        slot.task.store(event.task, Ordering::Relaxed);
        slot.at_ns.store(event.at_ns, Ordering::Relaxed);
        slot.sequence.store(written(index), Ordering::Release);
        self.head.0.store(index.wrapping_add(1), Ordering::Release);
    }

    /// Hands every event written since the last drain and still whole to `take`, oldest
    /// first, and counts the others as lost (overwritten before this copy, or during it).
    /// Returns how many it handed on. The one reader only.
    pub(crate) fn drain(&self, mut take: impl FnMut(Event)) -> u64 {
        let tail = self.tail.0.load(Ordering::Relaxed);
        let head = self.head.0.load(Ordering::Acquire);
        let capacity = self.mask + 1;
        let mut lost = 0;
        let mut index = tail;
        if head.wrapping_sub(index) > capacity {
            lost += head.wrapping_sub(index) - capacity;
            index = head.wrapping_sub(capacity);
        }
        let mut handed = 0;
        while index != head {
            match self.copy(index) {
                Some(event) => {
                    take(event);
                    handed += 1;
                }
                None => lost += 1,
            }
            index = index.wrapping_add(1);
        }
        self.tail.0.store(head, Ordering::Relaxed);
        if lost > 0 {
            let before = self.lost.load(Ordering::Relaxed);
            self.lost.store(before + lost, Ordering::Relaxed);
        }
        handed
    }

    /// Event `index` as its slot holds it, `None` when the slot holds (or is becoming) a
    /// later one.
    fn copy(&self, index: u64) -> Option<Event> {
        let slot = &self.slots[(index & self.mask) as usize];
        if slot.sequence.load(Ordering::Acquire) != written(index) {
            return None;
        }
        let first = slot.head.load(Ordering::Relaxed);
        let task = slot.task.load(Ordering::Relaxed);
        let at_ns = slot.at_ns.load(Ordering::Relaxed);
        // The words are read before the sequence is read again: a rewrite that began
        // before them shows there.
        fence(Ordering::Acquire);
        if slot.sequence.load(Ordering::Relaxed) != written(index) {
            return None;
        }
        Some(Event {
            kind: EventKind::from_byte((first >> 56) as u8)?,
            task,
            at_ns,
            other: first & OTHER_MASK,
        })
    }

    /// Events lost so far: overwritten before the reader copied them.
    pub(crate) fn overflowed(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Starts the count of lost events again, for the ring's next thread. The reader only,
    /// once it has drained the ring of a thread that exited.
    pub(crate) fn reset_overflowed(&self) {
        self.lost.store(0, Ordering::Relaxed);
    }
}
