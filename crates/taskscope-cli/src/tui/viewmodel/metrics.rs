//! Numbers the dashboard shows for a task that the model does not store as such: they
//! depend on the time they are looked at (a running poll, a live task's age).

use crate::model::task::{Kind, Outcome, State, Task};

/// How long the poll running now has lasted, for a running task.
pub(crate) fn current_poll_ns(task: &Task, now_ns: u64) -> Option<u64> {
    (task.is_live() && task.stats.state == State::Running)
        .then(|| now_ns.saturating_sub(task.stats.last_poll_start_ns))
}

/// Time from spawn to end (or to now, while it lives).
pub(crate) fn total_ns(task: &Task, now_ns: u64) -> u64 {
    let end = task.end.as_ref().map_or(now_ns, |end| end.ended_ns);
    end.saturating_sub(task.spawned_ns)
}

/// Time spent neither in a poll nor waiting for a worker: waiting for a wake.
pub(crate) fn idle_ns(task: &Task, now_ns: u64) -> u64 {
    total_ns(task, now_ns)
        .saturating_sub(task.stats.busy_ns)
        .saturating_sub(task.stats.scheduled_ns)
}

/// The state of a live task or the outcome of an ended one, in one word.
pub(crate) fn state_label(task: &Task) -> &'static str {
    match task.outcome() {
        Some(Outcome::Completed) => "done",
        Some(Outcome::Cancelled) => "cancelled",
        Some(Outcome::CancelledAtShutdown) => "shutdown",
        Some(Outcome::Panicked { .. }) => "panicked",
        Some(Outcome::Unknown) => "ended",
        None => match task.stats.state {
            // A spawn_blocking task "runs" for as long as its closure: not a poll.
            State::Running if task.kind == Kind::Blocking => "blocking",
            State::Running => "running",
            State::Scheduled => "scheduled",
            State::Idle => "idle",
            State::Unknown => "new",
        },
    }
}

/// Tasks by state, as the header counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) running: usize,
    pub(crate) scheduled: usize,
    pub(crate) idle: usize,
    pub(crate) ended: usize,
    /// Short-lived tasks the probe counted by site, not listed one by one (`total` leaves
    /// them out: it is what the task table lists).
    pub(crate) folded: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, task: &Task) {
        if !task.is_live() {
            self.ended += 1;
            return;
        }
        match task.stats.state {
            State::Running => self.running += 1,
            State::Scheduled => self.scheduled += 1,
            State::Idle | State::Unknown => self.idle += 1,
        }
    }

    pub(crate) fn total(&self) -> usize {
        self.running + self.scheduled + self.idle + self.ended
    }
}

/// A compact duration for table cells: at most 7 characters (`612.4ms`, `2.05s`, `3m12s`).
pub(crate) fn short_ns(ns: u64) -> String {
    if ns >= 60_000_000_000 {
        let secs = ns / 1_000_000_000;
        if secs >= 3600 {
            format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
        } else {
            format!("{}m{:02}s", secs / 60, secs % 60)
        }
    } else {
        crate::duration::human_ns(ns)
    }
}

/// A count with thousands separated (`4,812`): counts of tasks get large.
pub(crate) fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A count in at most `width` characters: exact where it fits, else to three significant
/// figures with a unit (`3.84M`, `18.4G`): a site's tally of polls runs to millions.
pub(crate) fn short_count(n: u64, width: usize) -> String {
    let exact = n.to_string();
    if exact.len() <= width {
        return exact;
    }
    compact(n)
}

/// A large count to three significant figures with its unit: `2.40k`, `1.92M`, `18.4G`.
pub(crate) fn compact(n: u64) -> String {
    let (value, unit) = match n {
        0..1_000 => return n.to_string(),
        1_000..1_000_000 => (n as f64 / 1e3, "k"),
        1_000_000..1_000_000_000 => (n as f64 / 1e6, "M"),
        1_000_000_000..1_000_000_000_000 => (n as f64 / 1e9, "G"),
        _ => (n as f64 / 1e12, "T"),
    };
    let decimals = match value {
        v if v < 9.995 => 2,
        v if v < 99.95 => 1,
        _ => 0,
    };
    format!("{value:.decimals$}{unit}")
}

/// A position in a process's life, `mm:ss.t`, for uptimes and replay positions.
pub(crate) fn clock(ns: u64) -> String {
    let tenths = ns / 100_000_000;
    let secs = tenths / 10;
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
    } else {
        format!("{:02}:{:02}.{}", secs / 60, secs % 60, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_durations_stay_narrow() {
        assert_eq!(short_ns(612_400_000), "612.4ms");
        assert_eq!(short_ns(192_000_000_000), "3m12s");
        assert_eq!(short_ns(7_500_000_000_000), "2h05m");
        assert!(short_ns(59_999_999_999).len() <= 7);
    }

    #[test]
    fn counts_group_their_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(4812), "4,812");
        assert_eq!(grouped(1_000_000), "1,000,000");
    }

    #[test]
    fn counts_too_wide_for_their_column_are_shortened() {
        assert_eq!(short_count(999_999, 6), "999999");
        assert_eq!(short_count(3_837_342, 6), "3.84M");
        assert_eq!(short_count(1_918_671, 6), "1.92M");
        assert_eq!(short_count(99_960_000, 6), "100M");
        assert_eq!(short_count(u64::MAX, 6), "18446744T");
        assert_eq!(compact(2_400), "2.40k");
    }

    #[test]
    fn clock_reads_like_a_stopwatch() {
        assert_eq!(clock(0), "00:00.0");
        assert_eq!(clock(83_450_000_000), "01:23.4");
        assert_eq!(clock(3_723_000_000_000), "1:02:03");
    }
}
