//! `TASKSCOPE_FLIGHT`: the memory the flight recorder may hold, and how it is shared out.
//!
//! One number bounds it all, so that the recorder can never grow the app: half goes to the
//! threads' event rings (`tasks/ring.rs`, a fixed number of fixed-size rings: a thread
//! that comes when they are all taken is not recorded, and is counted), a quarter to the
//! recent history the reader keeps (`detect/flight.rs`), a quarter to the windows kept
//! around the last stalls.

/// Bytes one event is reckoned at wherever it is held (a ring slot is 24, a decoded event
/// in a window a little more).
const EVENT_BYTES: usize = 32;
/// Windows kept with their stalls for watchers that connect later.
pub(crate) const RETAINED_WINDOWS: usize = 2;

/// The flight recorder's share of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlightBudget {
    pub(crate) bytes: usize,
}

impl FlightBudget {
    /// 8 MiB: rings of 4,096 events for 32 threads, about 65,000 events of history.
    pub(crate) const DEFAULT: FlightBudget = FlightBudget {
        bytes: 8 * 1024 * 1024,
    };
    /// Below this the rings would be too small to cover one watchdog tick.
    const MIN_BYTES: usize = 256 * 1024;
    /// Past this a setting is more likely a typo than a wish.
    const MAX_BYTES: usize = 1 << 30;

    /// Events in one thread's ring: a power of two, about 1/96 of the budget (4,096 at the
    /// default), so that a ring covers a watchdog tick of a busy thread.
    pub(crate) fn ring_events(&self) -> usize {
        (self.bytes / 96 / RING_SLOT_BYTES)
            .clamp(1024, 1 << 16)
            .next_power_of_two()
    }

    /// How many threads get a ring.
    pub(crate) fn max_rings(&self) -> usize {
        (self.bytes / 2 / (self.ring_events() * RING_SLOT_BYTES)).max(1)
    }

    /// Events of recent history the reader keeps, across all threads.
    pub(crate) fn history_events(&self) -> usize {
        self.bytes / 4 / EVENT_BYTES
    }

    /// Events one stall's window may hold.
    pub(crate) fn window_events(&self) -> usize {
        self.bytes / 4 / RETAINED_WINDOWS / EVENT_BYTES
    }

    /// `bytes`, brought within the sizes [`FlightBudget::parse`] accepts.
    pub(crate) fn clamped(bytes: usize) -> Self {
        Self {
            bytes: bytes.clamp(Self::MIN_BYTES, Self::MAX_BYTES),
        }
    }

    /// `off`, or a size: bytes, or with `KiB`, `MiB` (also `K`, `M`, `KB`, `MB`).
    pub(crate) fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let digits = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1024,
            "m" | "mb" | "mib" => 1024 * 1024,
            _ => return Err("expected `off` or a size such as `8MiB` or `512KiB`".into()),
        };
        let bytes = number
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .ok_or("expected `off` or a size such as `8MiB` or `512KiB`")?;
        if !(Self::MIN_BYTES..=Self::MAX_BYTES).contains(&bytes) {
            return Err("the size must be from 256KiB to 1024MiB".into());
        }
        Ok(Some(Self { bytes }))
    }
}

/// Bytes of one ring slot (`tasks/ring.rs` keeps three words an event and a sequence word).
pub(crate) const RING_SLOT_BYTES: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_shares_out_eight_mib() {
        let budget = FlightBudget::DEFAULT;
        assert_eq!(budget.ring_events(), 4096);
        assert_eq!(budget.max_rings(), 32);
        let held = budget.max_rings() * budget.ring_events() * RING_SLOT_BYTES
            + budget.history_events() * EVENT_BYTES
            + RETAINED_WINDOWS * budget.window_events() * EVENT_BYTES;
        assert!(
            held <= budget.bytes,
            "{held} bytes for a budget of {}",
            budget.bytes
        );
    }

    #[test]
    fn sizes_parse_with_or_without_a_unit_and_off_turns_it_off() {
        assert_eq!(FlightBudget::parse("off"), Ok(None));
        assert_eq!(
            FlightBudget::parse("2MiB"),
            Ok(Some(FlightBudget { bytes: 2 << 20 }))
        );
        assert_eq!(
            FlightBudget::parse("512k"),
            Ok(Some(FlightBudget { bytes: 512 << 10 }))
        );
        assert_eq!(
            FlightBudget::parse("1048576"),
            Ok(Some(FlightBudget { bytes: 1 << 20 }))
        );
        assert!(FlightBudget::parse("1KiB").is_err(), "too small to use");
        assert!(FlightBudget::parse("lots").is_err());
    }
}
