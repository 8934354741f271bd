//! Durations as people write them: `100ms`, `2s`, `1.5s`, `1m`.
//!
//! One spelling for the probe's environment (`TASKSCOPE_STALL_THRESHOLD=250ms`) and the
//! command line (`--stall-threshold 250ms`), so a value can be copied between them.

use std::time::Duration;

/// Parses `<number><unit>` with unit `ns`, `us`, `ms`, `s`, `m` or `h`. A bare number is
/// refused: `100` could mean milliseconds or seconds, and guessing wrong silently changes
/// what counts as a stall.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit; write e.g. `100ms`, `2s`, `1.5s` or `1m`"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!("`{text}` does not start with a number; write e.g. `100ms` or `2s`")
    })?;
    let unit_secs = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; use ns, us, ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(value * unit_secs)
        .map_err(|_| format!("`{text}` is not a usable duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_usual_spellings() {
        assert_eq!(parse("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse(" 3h "), Ok(Duration::from_secs(3 * 3600)));
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        for bad in ["", "100", "ms", "1.2.3s", "5 parsecs", "-1s", "1e3ms"] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains('`'), "{bad}: {err}");
        }
    }
}
