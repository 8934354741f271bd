//! Waiting until a thread is blocked where a test wants to sample it, read from `/proc`:
//! a thread that has reported in has not necessarily reached its blocking call yet, and a
//! loaded machine can keep it from getting there for as long as it likes.

use std::time::{Duration, Instant};

/// How long a thread gets to reach its blocking call: wide, for a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// The system calls a blocking call of this name waits in: `sleep` (`std::thread::sleep`;
/// glibc makes `nanosleep` a `clock_nanosleep`), `read`, or `futex` (std's locks and
/// channels).
fn system_calls(call: &str) -> &'static [libc::c_long] {
    match call {
        "sleep" => &[libc::SYS_nanosleep, libc::SYS_clock_nanosleep],
        "read" => &[libc::SYS_read],
        "futex" => &[libc::SYS_futex],
        other => panic!("no system calls known for `{other}`"),
    }
}

/// The system call thread `tid` of this process is asleep in now, if it is: its state is
/// `S` (a thread merely preempted inside a call, such as the futex wake of a channel
/// send, is runnable, not asleep), and `/proc/self/task/<tid>/syscall` names the call.
fn asleep_in(tid: i32) -> Option<libc::c_long> {
    let task = format!("/proc/self/task/{tid}");
    let stat = std::fs::read_to_string(format!("{task}/stat")).ok()?;
    // The state follows the command's closing parenthesis.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    if state != "S" {
        return None;
    }
    let syscall = std::fs::read_to_string(format!("{task}/syscall")).ok()?;
    syscall.split_whitespace().next()?.parse().ok()
}

/// Waits until thread `tid` of this process is asleep in the blocking call `call`
/// ([`system_calls`]); panics, saying where it was, after [`PATIENCE`].
pub(crate) fn wait_until_blocked(tid: i32, call: &str) {
    let expected = system_calls(call);
    let start = Instant::now();
    loop {
        let now = asleep_in(tid);
        if now.is_some_and(|number| expected.contains(&number)) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "thread {tid} was not asleep in `{call}` (system calls {expected:?}) within \
             {PATIENCE:?}; last seen asleep in {now:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
