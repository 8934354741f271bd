//! Reading a process's own CPU time and memory from the kernel, split between the app's
//! threads and the instrumentation's threads.
//!
//! Both instruments do their heavy work on threads of their own, named at creation
//! (`taskscope-probe`, `taskscope-watchdog`, `taskscope-recorder`; `console_subscriber`).
//! Summing those threads' CPU time gives the instrument's own cost; the rest of the
//! process is the app (including what the instrument adds to every poll).

use std::fs;
use std::time::Duration;

/// Names of the instrumentation's own threads as `/proc/.../comm` shows them (cut to 15
/// bytes). Exact names, not a `taskscope-` prefix: the main thread of this very binary is
/// `taskscope-bench`.
const INSTRUMENT_THREADS: [&str; 4] = [
    "taskscope-probe",
    "taskscope-watch",
    "taskscope-recor",
    "console_subscri",
];

/// CPU time (user + system) of the whole calling process so far.
pub(crate) fn process_cpu() -> Duration {
    // SAFETY: getrusage writes into the struct we pass and has no other effect.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    rusage_cpu(&usage)
}

/// User + system time of a `rusage`.
pub(crate) fn rusage_cpu(usage: &libc::rusage) -> Duration {
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// CPU time so far of this process's instrumentation threads (0 when there are none).
pub(crate) fn instrument_cpu() -> Duration {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| INSTRUMENT_THREADS.contains(&comm.trim_end()))
        })
        .map(|task| thread_cpu(&task.path()))
        .sum()
}

/// One thread's CPU time: `schedstat` has it in nanoseconds; `stat` (clock ticks) is the
/// fallback on kernels without scheduler statistics.
fn thread_cpu(task: &std::path::Path) -> Duration {
    if let Ok(text) = fs::read_to_string(task.join("schedstat"))
        && let Some(ns) = text.split_whitespace().next().and_then(|n| n.parse().ok())
    {
        return Duration::from_nanos(ns);
    }
    let Ok(stat) = fs::read_to_string(task.join("stat")) else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos((ticks(11) + ticks(12)) * 1_000_000_000 / per_second)
}

/// Resident memory of process `pid` (`self` for the caller) now, in bytes.
pub(crate) fn rss_bytes(pid: &str) -> Option<u64> {
    let statm = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    Some(pages * page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_has_cpu_time_and_memory() {
        let spin: u64 = (0..2_000_000u64).map(std::hint::black_box).sum();
        assert!(spin > 0);
        assert!(process_cpu() > Duration::ZERO);
        assert!(rss_bytes("self").unwrap() > 0);
    }

    #[test]
    fn a_named_instrument_thread_is_counted() {
        let thread = std::thread::Builder::new()
            .name("taskscope-probe".into())
            .spawn(|| {
                // Spins until its CPU time is counted, however long a busy machine takes
                // to give it 10 ms of CPU: a fixed wall-clock spin is not enough under load.
                let start = std::time::Instant::now();
                loop {
                    let counted = instrument_cpu();
                    if counted >= Duration::from_millis(10)
                        || start.elapsed() > Duration::from_secs(60)
                    {
                        return counted;
                    }
                    let spin = std::time::Instant::now();
                    while spin.elapsed() < Duration::from_millis(5) {
                        std::hint::black_box(0);
                    }
                }
            })
            .unwrap();
        assert!(thread.join().unwrap() >= Duration::from_millis(10));
    }
}
