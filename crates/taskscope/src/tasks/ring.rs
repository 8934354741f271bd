//! A thread's own ring of compact events (polls, spawns, ends, wakes), written by that
//! thread alone and copied out by one reader on the probe's side: the flight recorder's
//! raw material.
//!
//! The app's thread pays for an event with a few plain stores and no lock, no allocation
//! and no look-up of any per-task structure: the event says only which task, when, and one
//! word more. Single producer, single consumer, free-running indices:
//!
//! * The writer owns `head`: it fills the slot at `head`, then publishes it by storing
//!   `head + 1` with `Release`. A reader that loads `head` with `Acquire` sees every slot
//!   below it complete.
//! * The reader owns `tail`: it copies the slots from `tail` to the `head` it loaded, then
//!   gives them back by storing that `head` with `Release`. A writer that loads `tail`
//!   with `Acquire` before reusing a slot knows the reader is done with it, so a copy is
//!   never torn by a later event.
//! * A full ring refuses the event and counts it ([`EventRing::overflowed`]): the app is
//!   never made to wait for the reader, and what was lost is said, not guessed.
//!
//! The writer remembers the last `tail` it read (`tail_seen`), so that it touches the
//! reader's cache line only when the ring looks full. The slots are atomics rather than
//! plain memory so that the protocol is checked by loom as it runs
//! (`tests/loom_models.rs`); relaxed stores cost what plain stores do.

use crate::base::sync::atomic::{AtomicU64, Ordering};

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

/// One slot: the event's three words.
struct Slot {
    head: AtomicU64,
    task: AtomicU64,
    at_ns: AtomicU64,
}

/// A value alone on its cache line, so that the writer's and the reader's indices never
/// share one.
#[repr(align(64))]
struct Padded<T>(T);

/// The ring (see the module doc for its protocol).
pub(crate) struct EventRing {
    /// The next slot the writer fills. Written by the writer only.
    head: Padded<AtomicU64>,
    /// The writer's last reading of `tail`, and the events it had to refuse. Written by the
    /// writer only.
    tail_seen: AtomicU64,
    overflowed: AtomicU64,
    /// The next slot the reader copies. Written by the reader only.
    tail: Padded<AtomicU64>,
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
                head: AtomicU64::new(0),
                task: AtomicU64::new(0),
                at_ns: AtomicU64::new(0),
            })
            .collect();
        Self {
            head: Padded(AtomicU64::new(0)),
            tail_seen: AtomicU64::new(0),
            overflowed: AtomicU64::new(0),
            tail: Padded(AtomicU64::new(0)),
            slots,
            mask: capacity as u64 - 1,
        }
    }

    /// How many events the ring holds.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Appends `event`; `false` when the ring is full and it was counted as overflowed.
    /// The writing thread only.
    #[inline]
    pub(crate) fn push(&self, event: Event) -> bool {
        let head = self.head.0.load(Ordering::Relaxed);
        let capacity = self.mask + 1;
        if head.wrapping_sub(self.tail_seen.load(Ordering::Relaxed)) >= capacity {
            let tail = self.tail.0.load(Ordering::Acquire);
            self.tail_seen.store(tail, Ordering::Relaxed);
            if head.wrapping_sub(tail) >= capacity {
                let overflowed = self.overflowed.load(Ordering::Relaxed);
                self.overflowed.store(overflowed + 1, Ordering::Relaxed);
                return false;
            }
        }
        let slot = &self.slots[(head & self.mask) as usize];
        let first = ((event.kind as u64) << 56) | (event.other & OTHER_MASK);
        slot.head.store(first, Ordering::Relaxed);
        slot.task.store(event.task, Ordering::Relaxed);
        slot.at_ns.store(event.at_ns, Ordering::Relaxed);
        self.head.0.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Hands every event written since the last drain to `take`, oldest first, and frees
    /// their slots. Returns how many. The one reader only.
    pub(crate) fn drain(&self, mut take: impl FnMut(Event)) -> u64 {
        let tail = self.tail.0.load(Ordering::Relaxed);
        let head = self.head.0.load(Ordering::Acquire);
        let mut index = tail;
        while index != head {
            let slot = &self.slots[(index & self.mask) as usize];
            let first = slot.head.load(Ordering::Relaxed);
            let task = slot.task.load(Ordering::Relaxed);
            let at_ns = slot.at_ns.load(Ordering::Relaxed);
            if let Some(kind) = EventKind::from_byte((first >> 56) as u8) {
                take(Event {
                    kind,
                    task,
                    at_ns,
                    other: first & OTHER_MASK,
                });
            }
            index = index.wrapping_add(1);
        }
        self.tail.0.store(head, Ordering::Release);
        head.wrapping_sub(tail)
    }

    /// Events refused so far because the ring was full.
    pub(crate) fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Starts the count of refused events again, for the ring's next thread. Only while
    /// no thread writes the ring (it was given back, and the hand-over orders this store
    /// before the next writer's).
    pub(crate) fn reset_overflowed(&self) {
        self.overflowed.store(0, Ordering::Relaxed);
    }
}
