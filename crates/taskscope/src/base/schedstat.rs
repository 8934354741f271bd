//! What the kernel says a thread did with its time: running on a CPU, or runnable but
//! waiting for one (Linux: `/proc/.../schedstat`).
//!
//! A stall measures wall time. On an overloaded machine (a CI runner running tests side
//! by side) a thread can wait for a CPU for longer than the stall threshold in the middle
//! of a poll that would have been quick: that stall is the machine's, not the code's, and
//! the time the thread spent waiting for a CPU tells the two apart. Read only on the
//! stall paths: when a stall is first seen, and when a stalled poll returns.

/// A thread's scheduler totals at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SchedStat {
    /// Time spent running, in ns.
    pub(crate) cpu_ns: u64,
    /// Time spent runnable but waiting for a CPU, in ns.
    pub(crate) waiting_ns: u64,
}

/// Thread `tid` of this process.
pub(crate) fn of_thread(tid: u64) -> Option<SchedStat> {
    read(&format!("/proc/self/task/{tid}/schedstat"))
}

/// The calling thread.
pub(crate) fn of_this_thread() -> Option<SchedStat> {
    read("/proc/thread-self/schedstat")
}

fn read(path: &str) -> Option<SchedStat> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    Some(SchedStat {
        cpu_ns: fields.next()?.ok()?,
        waiting_ns: fields.next()?.ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_computes_gains_cpu_time() {
        let Some(before) = of_this_thread() else {
            return; // no schedstat on this platform
        };
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = of_this_thread().unwrap();
        assert!(after.cpu_ns > before.cpu_ns, "{before:?} {after:?}");
        assert!(after.waiting_ns >= before.waiting_ns);
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u64;
        assert!(of_thread(tid).is_some());
    }
}
