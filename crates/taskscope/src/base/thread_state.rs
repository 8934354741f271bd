//! What another thread of this process is doing right now, as Linux tells it without
//! touching the thread: the system call it is blocked in, if any
//! (`/proc/self/task/<tid>/syscall`), and how many times it has blocked so far
//! (`voluntary_ctxt_switches` in `/proc/self/task/<tid>/status`).
//!
//! This is the cheap look the body watcher (`body_watch.rs`) takes at every watchdog tick,
//! on the watchdog's thread, with no signal, no lock and no wait for the watched thread:
//! one small file read while the thread waits where the runtime parks (about 10 us of CPU
//! on a 2-core VM), and the larger `status` only while it is away from there.

/// The system call a thread was blocked in when looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syscall {
    /// On a CPU, or runnable (the kernel says `running`).
    Running,
    /// Blocked in system call `number`.
    Blocked(libc::c_long),
    /// Blocked outside any system call (a page fault, a stop).
    Elsewhere,
}

impl Syscall {
    /// Whether this is a wait tokio parks a `block_on` thread in: a futex (the
    /// multi-thread runtime's `CachedParkThread`, a current-thread runtime without an I/O
    /// driver) or epoll (the I/O driver). Other code waits there too (a `std` mutex, a
    /// thread join): from outside, those look the same.
    pub(crate) fn may_be_runtime_park(self) -> bool {
        let Syscall::Blocked(number) = self else {
            return false;
        };
        PARK_SYSCALLS.contains(&number)
    }

    fn parse(text: &str) -> Option<Self> {
        let first = text.split_whitespace().next()?;
        match first {
            "running" => Some(Syscall::Running),
            "-1" => Some(Syscall::Elsewhere),
            number => number.parse().ok().map(Syscall::Blocked),
        }
    }
}

#[cfg(all(target_os = "linux", not(target_arch = "aarch64")))]
const PARK_SYSCALLS: &[libc::c_long] = &[
    libc::SYS_futex,
    libc::SYS_futex_waitv,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
];

/// aarch64 has no plain `epoll_wait`.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
const PARK_SYSCALLS: &[libc::c_long] = &[
    libc::SYS_futex,
    libc::SYS_futex_waitv,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
];

#[cfg(not(target_os = "linux"))]
const PARK_SYSCALLS: &[libc::c_long] = &[];

/// One look at a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThreadState {
    pub(crate) syscall: Syscall,
    /// Times the thread has blocked since it started; not read (`None`) while the thread
    /// waits where the runtime parks, so that a look at an idle thread is one small read.
    pub(crate) voluntary_switches: Option<u64>,
}

/// Thread `tid` of this process, now; `None` where Linux cannot say (another OS, a
/// `/proc` without `syscall`, a thread that has exited).
pub(crate) fn of_thread(tid: u64) -> Option<ThreadState> {
    read(
        &format!("/proc/self/task/{tid}/syscall"),
        &format!("/proc/self/task/{tid}/status"),
    )
}

/// The calling thread (whose system call is, of course, the read itself).
pub(crate) fn of_this_thread() -> Option<ThreadState> {
    read("/proc/thread-self/syscall", "/proc/thread-self/status")
}

fn read(syscall: &str, status: &str) -> Option<ThreadState> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let syscall = Syscall::parse(&std::fs::read_to_string(syscall).ok()?)?;
    let voluntary_switches = if syscall.may_be_runtime_park() {
        None
    } else {
        Some(voluntary_switches(&std::fs::read_to_string(status).ok()?)?)
    };
    Some(ThreadState {
        syscall,
        voluntary_switches,
    })
}

fn voluntary_switches(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|count| count.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_kernels_words_are_read() {
        assert_eq!(Syscall::parse("running\n"), Some(Syscall::Running));
        assert_eq!(
            Syscall::parse("-1 0x7ffd 0x55aa\n"),
            Some(Syscall::Elsewhere)
        );
        assert_eq!(
            Syscall::parse("230 0x0 0x0 0x7ffd 0x7ffd 0x0 0x0 0x7ffd 0x7fe8\n"),
            Some(Syscall::Blocked(230))
        );
        assert_eq!(Syscall::parse(""), None);
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(voluntary_switches(status), Some(12));
    }

    #[test]
    fn a_sleeping_thread_is_blocked_outside_any_park_and_has_blocked() {
        let Some(_) = of_this_thread() else {
            return; // no /proc/<tid>/syscall here
        };
        let (tid_sender, tid) = std::sync::mpsc::channel();
        let sleeper = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_sender.send(unsafe { libc::gettid() } as u64).unwrap();
            std::thread::sleep(Duration::from_secs(2));
        });
        let tid = tid.recv().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let state = loop {
            let state = of_thread(tid).expect("the thread is alive");
            if matches!(state.syscall, Syscall::Blocked(_)) || std::time::Instant::now() > deadline
            {
                break state;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(matches!(state.syscall, Syscall::Blocked(_)), "{state:?}");
        assert!(!state.syscall.may_be_runtime_park(), "{state:?}");
        assert!(state.voluntary_switches >= Some(1), "{state:?}");
        sleeper.join().unwrap();
    }
}
