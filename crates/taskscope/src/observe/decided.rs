//! What the probe decided of each callsite when tracing registered it, found again by the
//! address of the callsite's metadata.
//!
//! tracing asks a filter about every event of a callsite whose interest is `sometimes`, and
//! some of those callsites fire thousands of times a second: tokio's semaphore reports each
//! permit a bounded channel hands out, with callsites it shares with a `Semaphore`'s, which
//! the probe does keep. Working out whether a callsite is the probe's takes string
//! comparisons of its target and module path each time (6% of a `pingpong` run's samples
//! on the tracing route); looking the answer up takes one load.
//!
//! Keyed by the address of the `'static` metadata a registration hands over: no other
//! metadata can ever sit at that address (metadata built on the fly, like `tracing-log`'s,
//! lives on the stack or the heap, never where a static is), so an address found here is
//! that callsite's. The table is direct-mapped and keeps the first callsite of each slot;
//! a callsite not found is simply decided again, so a full table costs time, never a wrong
//! answer.

use std::sync::atomic::{AtomicUsize, Ordering};

use tracing_core::Metadata;

/// Slots: a program's tokio callsites and its own log callsites, with room to spare.
const SLOTS: usize = 1024;

/// The answers kept, one word each: the metadata's address with the answer in its lowest
/// bit (metadata is aligned to at least 8 bytes), 0 for an empty slot.
pub(crate) struct Decided {
    slots: Box<[AtomicUsize]>,
}

impl std::fmt::Debug for Decided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decided").finish_non_exhaustive()
    }
}

impl Default for Decided {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| AtomicUsize::new(0)).collect(),
        }
    }
}

impl Decided {
    fn slot(&self, address: usize) -> &AtomicUsize {
        // Fibonacci hashing of the address, past the bits alignment leaves at zero.
        let hash = (address >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize);
        &self.slots[hash >> (usize::BITS - SLOTS.trailing_zeros())]
    }

    fn address(meta: &Metadata<'_>) -> usize {
        std::ptr::from_ref(meta) as usize
    }

    /// The answer kept for `meta`'s callsite, if any.
    #[inline]
    pub(crate) fn get(&self, meta: &Metadata<'_>) -> Option<bool> {
        let address = Self::address(meta);
        let word = self.slot(address).load(Ordering::Relaxed);
        (word & !1 == address).then_some(word & 1 == 1)
    }

    /// Keeps `answer` for the callsite of `meta`, when its slot is free.
    pub(crate) fn keep(&self, meta: &'static Metadata<'static>, answer: bool) {
        let address = Self::address(meta);
        debug_assert_eq!(address & 1, 0, "metadata is aligned");
        let _ = self.slot(address).compare_exchange(
            0,
            address | usize::from(answer),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_core::callsite::Identifier;
    use tracing_core::field::FieldSet;
    use tracing_core::{Kind, Level};

    struct Site;
    static SITE: Site = Site;
    impl tracing_core::Callsite for Site {
        fn set_interest(&self, _: tracing_core::Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            &A
        }
    }

    const fn metadata(name: &'static str) -> Metadata<'static> {
        Metadata::new(
            name,
            "target",
            Level::TRACE,
            None,
            None,
            None,
            FieldSet::new(&[], Identifier(&SITE)),
            Kind::EVENT,
        )
    }

    static A: Metadata<'static> = metadata("a");
    static B: Metadata<'static> = metadata("b");

    #[test]
    fn a_kept_answer_is_found_for_its_callsite_only() {
        let decided = Decided::default();
        assert_eq!(decided.get(&A), None);
        decided.keep(&A, true);
        decided.keep(&B, false);
        assert_eq!(decided.get(&A), Some(true));
        assert_eq!(decided.get(&B), Some(false));
        // The same fields elsewhere are another callsite, decided again.
        let on_the_stack = metadata("a");
        assert_eq!(decided.get(&on_the_stack), None);
    }

    #[test]
    fn the_first_answer_for_a_slot_stays() {
        let decided = Decided::default();
        decided.keep(&A, true);
        decided.keep(&A, false);
        assert_eq!(decided.get(&A), Some(true));
    }
}
