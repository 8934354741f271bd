//! [`ThreadTarget`]: what the sampler needs to know about a thread, recorded by the
//! thread itself so that nothing has to be looked up while it is stalled.
//!
//! A thread is addressed by its kernel thread id (`gettid`) rather than its `pthread_t`:
//! a `pthread_t` is a pointer into memory that is freed (and reused) when the thread is
//! joined, so signalling through it after the thread exited is undefined behaviour,
//! while `tgkill`-style calls on a dead tid fail cleanly with `ESRCH`. Kernel tids are
//! eventually reused too, so each thread also owns a liveness flag that a thread-local
//! destructor clears when the thread exits; the sampler checks it first. (A tid reused
//! in the narrow window between that check and the signal would at worst get sampled
//! instead; its stack pointer is then checked against the recorded bounds.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A thread that can be sampled later, from any thread. Get one with
/// [`Sampler::current_thread`](crate::Sampler::current_thread) on the thread itself.
#[derive(Clone, Debug)]
pub struct ThreadTarget {
    pub(crate) tid: i32,
    /// `[lo, hi)`: the thread's stack mapping; `(0, 0)` if unknown.
    pub(crate) stack: (usize, usize),
    pub(crate) alive: Arc<AtomicBool>,
}

impl ThreadTarget {
    /// The kernel thread id (as shown by `ps -L`, `top -H`, `/proc/<pid>/task`).
    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// Whether the thread is still running (it clears this as it exits).
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}

/// Per-thread record; dropping it (thread exit) marks the target gone.
struct Record(ThreadTarget);

impl Drop for Record {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::Release);
    }
}

thread_local! {
    static RECORD: Record = Record(describe_current());
}

pub(crate) fn current() -> ThreadTarget {
    RECORD.try_with(|r| r.0.clone()).unwrap_or_else(|_| {
        // Called while this thread's TLS is being torn down: it is exiting.
        let mut t = describe_current();
        t.alive = Arc::new(AtomicBool::new(false));
        t
    })
}

fn describe_current() -> ThreadTarget {
    ThreadTarget {
        tid: current_tid(),
        stack: stack_bounds().unwrap_or((0, 0)),
        alive: Arc::new(AtomicBool::new(true)),
    }
}

#[cfg(target_os = "linux")]
fn current_tid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

#[cfg(not(target_os = "linux"))]
fn current_tid() -> i32 {
    0
}

/// `[lo, hi)` of the calling thread's stack, from `pthread_getattr_np`.
#[cfg(target_os = "linux")]
fn stack_bounds() -> Option<(usize, usize)> {
    // SAFETY: zeroed pthread_attr_t is only used as an out-parameter, then destroyed.
    let mut attr: libc::pthread_attr_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer; pthread_self is always valid for the calling thread.
    if unsafe { libc::pthread_getattr_np(libc::pthread_self(), &mut attr) } != 0 {
        return None;
    }
    let mut addr: *mut libc::c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: `attr` was initialized by pthread_getattr_np; out-pointers are valid.
    let rc = unsafe { libc::pthread_attr_getstack(&attr, &mut addr, &mut size) };
    // SAFETY: `attr` was initialized by pthread_getattr_np and is destroyed once.
    unsafe { libc::pthread_attr_destroy(&mut attr) };
    if rc != 0 || addr.is_null() || size == 0 {
        return None;
    }
    let lo = addr as usize;
    Some((lo, lo.checked_add(size)?))
}

#[cfg(not(target_os = "linux"))]
fn stack_bounds() -> Option<(usize, usize)> {
    None
}
