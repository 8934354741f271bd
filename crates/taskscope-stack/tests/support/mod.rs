//! Waiting until a thread is blocked where a test wants to sample it, read from `/proc`:
//! a thread that has reported in has not necessarily reached its blocking call yet, and a
//! loaded machine can keep it from getting there for as long as it likes.

use std::time::{Duration, Instant};

/// How long a thread gets to reach its blocking call: wide, for a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// The system calls `std::thread::sleep` blocks in (glibc makes `nanosleep` a
/// `clock_nanosleep`).
pub const SLEEP: &[libc::c_long] = &[libc::SYS_nanosleep, libc::SYS_clock_nanosleep];
/// The system call a blocking `read` blocks in.
pub const READ: &[libc::c_long] = &[libc::SYS_read];
/// The system call std's locks and channels wait in.
pub const FUTEX: &[libc::c_long] = &[libc::SYS_futex];

/// The system call thread `tid` of this process is blocked in now, if it is blocked in
/// one (`/proc/self/task/<tid>/syscall` reads `running` while it runs).
fn blocked_in(tid: i32) -> Option<libc::c_long> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Waits until thread `tid` of this process is blocked in one of `syscalls`; panics,
/// saying where it was, after [`PATIENCE`].
pub fn wait_until_blocked(tid: i32, syscalls: &[libc::c_long]) {
    let start = Instant::now();
    loop {
        let now = blocked_in(tid);
        if now.is_some_and(|call| syscalls.contains(&call)) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "thread {tid} never blocked in one of the system calls {syscalls:?} within \
             {PATIENCE:?}; last seen in {now:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
