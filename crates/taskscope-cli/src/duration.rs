//! Human durations on the command line: `100ms`, `2s`, `1.5s`, `1m`.
//!
//! The same spelling the probe accepts in `TASKSCOPE_STALL_THRESHOLD`, so a value can be
//! copied between a flag and the environment unchanged.

pub(crate) use taskscope_api::duration::parse;

/// Formats a duration given in nanoseconds for people: `612.4ms`, `2.05s`, `850us`.
pub(crate) fn human_ns(ns: u64) -> String {
    let ns_f = ns as f64;
    if ns >= 1_000_000_000 {
        format!("{:.2}s", ns_f / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.1}ms", ns_f / 1e6)
    } else if ns >= 1_000 {
        format!("{:.0}us", ns_f / 1e3)
    } else {
        format!("{ns}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_at_a_readable_scale() {
        assert_eq!(human_ns(612_400_000), "612.4ms");
        assert_eq!(human_ns(2_050_000_000), "2.05s");
        assert_eq!(human_ns(850_000), "850us");
        assert_eq!(human_ns(12), "12ns");
    }
}
