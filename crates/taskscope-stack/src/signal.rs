//! The signal side: picking a free real-time signal, the handler that runs on the
//! sampled thread, and the one-request mailbox between the sampler and that handler.
//!
//! The handler is the only code that runs on the target thread, at an arbitrary point
//! of its execution, so it does the least work that still allows a good stack: it
//! copies the interrupted registers and the *live* part of the thread's stack (from the
//! stack pointer up to the stack's top, capped at [`MAX_COPY`]) into a buffer that was
//! allocated once at install time, then marks the request done and wakes the sampler
//! with `futex(FUTEX_WAKE)`. It allocates nothing, takes no lock, logs nothing, reads
//! no memory outside the target's recorded stack bounds, and preserves `errno`.
//! Everything else (walking frames, symbolizing) happens later on the sampler's thread.
//!
//! The mailbox is a single `AtomicU32` word: `sequence << 2 | phase`. The sampler
//! publishes a request as `(seq, REQUESTED)` and sends the signal carrying `seq` in
//! `si_value`. The handler claims it by compare-exchanging `(seq, REQUESTED)` to
//! `(seq, WRITING)`; only then does it touch the buffer, and it ends with
//! `(seq, DONE)`. A sampler that gives up compare-exchanges `(seq, REQUESTED)` back to
//! idle, so a handler arriving late (its `seq` no longer matches) returns without
//! writing. If the handler already claimed the request, the sampler waits for `DONE`
//! (a bounded copy) before the buffer can be reused.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::arch;
use crate::error::Unavailable;

/// At most this many bytes of live stack are copied per sample. Frames beyond it (very
/// deep stacks, huge debug-build frames) are cut off; the walk stops there.
pub(crate) const MAX_COPY: usize = 1024 * 1024;

/// How often a waiting sampler re-checks that its target is still alive.
const LIVENESS_POLL: std::time::Duration = std::time::Duration::from_millis(10);

const IDLE: u32 = 0;
const REQUESTED: u32 = 1;
const WRITING: u32 = 2;
const DONE: u32 = 3;

/// Outcome codes the handler leaves in [`Mailbox::status`].
pub(crate) const STATUS_OK: u32 = 0;
/// The interrupted stack pointer was outside the recorded stack bounds.
pub(crate) const STATUS_FOREIGN_STACK: u32 = 1;

const fn pack(seq: u32, phase: u32) -> u32 {
    (seq << 2) | phase
}

/// The copy buffer, written only by a handler that owns the current request.
struct StackBuf(UnsafeCell<[u8; MAX_COPY]>);

// SAFETY: access is serialized by the mailbox protocol (see the module docs): the
// handler writes only between its successful claim and `DONE`, and the sampler reads
// only after observing `DONE` and before publishing the next request.
unsafe impl Sync for StackBuf {}

/// Shared state between [`crate::Sampler`] and the handler. One per process.
pub(crate) struct Mailbox {
    state: AtomicU32,
    /// Request: lowest and one-past-highest address of the target's stack.
    stack_lo: AtomicUsize,
    stack_hi: AtomicUsize,
    /// Reply: registers, where the copy starts, how many bytes were copied, status.
    regs: [AtomicU64; arch::NREGS],
    copy_start: AtomicUsize,
    copy_len: AtomicUsize,
    status: AtomicU32,
}

static MAILBOX: Mailbox = Mailbox {
    state: AtomicU32::new(IDLE),
    stack_lo: AtomicUsize::new(0),
    stack_hi: AtomicUsize::new(0),
    regs: [const { AtomicU64::new(0) }; arch::NREGS],
    copy_start: AtomicUsize::new(0),
    copy_len: AtomicUsize::new(0),
    status: AtomicU32::new(STATUS_OK),
};

// A static, so it exists before any handler can run and is never freed; pages that a
// sample never touches are never backed by memory.
static STACK_BUF: StackBuf = StackBuf(UnsafeCell::new([0; MAX_COPY]));

/// What a completed request produced. Borrowed from the process-wide buffer, so it
/// lives only as long as the caller holds the sampling lock.
pub(crate) struct Capture<'a> {
    pub(crate) regs: [u64; arch::NREGS],
    /// Address (in the target thread) of `stack[0]`.
    pub(crate) stack_base: usize,
    pub(crate) stack: &'a [u8],
}

/// Failure modes of one request, mapped to public errors by the caller.
pub(crate) enum RequestError {
    /// `rt_tgsigqueueinfo` failed with this errno.
    Send(i32),
    Timeout,
    /// The thread exited before answering.
    Gone,
    ForeignStack,
}

/// Token proving the caller holds the sampling lock, so only one request is in flight.
pub(crate) struct Exclusive(pub(crate) ());

/// Picks a free real-time signal and installs the handler on it.
pub(crate) fn install() -> Result<i32, Unavailable> {
    // glibc keeps SIGRTMIN-2 and SIGRTMIN-1 for itself and SIGRTMIN() already skips them.
    // Start a few above it: low RT signals are the ones other libraries pick first.
    let first = libc::SIGRTMIN() + 5;
    let last = libc::SIGRTMAX() - 1;
    for sig in first..=last {
        if try_install(sig)? {
            return Ok(sig);
        }
    }
    Err(Unavailable::NoFreeSignal { first, last })
}

/// Installs the handler on `sig` if nobody else has one there. Returns whether it did.
fn try_install(sig: i32) -> Result<bool, Unavailable> {
    // SAFETY: zeroed `sigaction` is a valid "no handler, empty mask" value.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = on_signal as *const () as usize;
    new.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
    // Block every other signal while the handler copies: nothing may reenter it midway.
    // SAFETY: `sa_mask` is a valid, owned sigset_t.
    unsafe { libc::sigfillset(&mut new.sa_mask) };

    // SAFETY: zeroed is a valid out-parameter value.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: querying only (null new action); `old` is a valid out-pointer.
    if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
        return Err(os_error("sigaction"));
    }
    if old.sa_sigaction != libc::SIG_DFL {
        return Ok(false);
    }
    // SAFETY: `new` is fully initialized and `on_signal` is async-signal-safe.
    if unsafe { libc::sigaction(sig, &new, &mut old) } != 0 {
        return Err(os_error("sigaction"));
    }
    if old.sa_sigaction != libc::SIG_DFL {
        // Someone installed a handler between our query and our install: give it back.
        // SAFETY: restoring exactly what was there.
        unsafe { libc::sigaction(sig, &old, std::ptr::null_mut()) };
        return Ok(false);
    }
    Ok(true)
}

fn os_error(call: &'static str) -> Unavailable {
    let err = std::io::Error::last_os_error();
    Unavailable::Os {
        call,
        errno: err.raw_os_error().unwrap_or(0),
        message: err.to_string(),
    }
}

/// The part of `siginfo_t` we send and read (`_sifields._rt` of the kernel's layout,
/// identical on x86_64 and aarch64).
#[repr(C)]
struct QueueInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    pid: i32,
    uid: u32,
    value: usize,
    _rest: [u8; 128 - 32],
}

const _: () = assert!(std::mem::size_of::<QueueInfo>() == std::mem::size_of::<libc::siginfo_t>());

/// Sends request `seq` to thread `tid`, then waits up to `timeout` for its reply.
pub(crate) fn request<'a>(
    lock: &'a Exclusive,
    sig: i32,
    tid: i32,
    stack: (usize, usize),
    seq: u32,
    timeout: std::time::Duration,
    alive: &AtomicBool,
) -> Result<Capture<'a>, RequestError> {
    let m = &MAILBOX;
    let seq = seq & (u32::MAX >> 2);
    m.stack_lo.store(stack.0, Ordering::Relaxed);
    m.stack_hi.store(stack.1, Ordering::Relaxed);
    m.state.store(pack(seq, REQUESTED), Ordering::SeqCst);

    if let Err(errno) = send(sig, tid, seq) {
        m.state.store(IDLE, Ordering::SeqCst);
        return Err(RequestError::Send(errno));
    }
    await_done(m, seq, timeout, alive)?;
    // SAFETY: the request is DONE, so no handler writes the buffer until we publish
    // another request, which needs the `Exclusive` borrowed for `'a`.
    let result = unsafe { take_reply(lock, m) };
    m.state.store(IDLE, Ordering::Release);
    result
}

/// Queues `sig` carrying `seq` to thread `tid` of this process; the errno on failure.
fn send(sig: i32, tid: i32, seq: u32) -> Result<(), i32> {
    // SAFETY: getpid/getuid cannot fail.
    let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    let info = QueueInfo {
        signo: sig,
        errno: 0,
        code: libc::SI_QUEUE,
        _pad: 0,
        pid,
        uid,
        value: seq as usize,
        _rest: [0; 96],
    };
    // rt_tgsigqueueinfo addresses the thread by (process, kernel tid), never through a
    // pthread_t that may already be freed, and carries `seq` to the handler.
    // SAFETY: plain syscall with a valid, fully initialized siginfo buffer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            pid as libc::c_long,
            tid as libc::c_long,
            sig as libc::c_long,
            &info as *const QueueInfo,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    Ok(())
}

/// Waits until the handler marks request `seq` done. Gives up (taking the request back,
/// so a late handler writes nothing) at the deadline or when the thread is gone, unless
/// the handler has already claimed it: then the buffer is being written and must not be
/// reused, so it waits for the bounded copy to finish.
fn await_done(
    m: &Mailbox,
    seq: u32,
    timeout: std::time::Duration,
    alive: &AtomicBool,
) -> Result<(), RequestError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let s = m.state.load(Ordering::Acquire);
        if s == pack(seq, DONE) {
            return Ok(());
        }
        let now = std::time::Instant::now();
        // A thread that exits with our signal still pending never answers: stop waiting
        // as soon as it is gone rather than at the deadline.
        let gone = !alive.load(Ordering::Acquire);
        if s == pack(seq, REQUESTED) && (now >= deadline || gone) {
            if m.state
                .compare_exchange(s, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Err(if gone {
                    RequestError::Gone
                } else {
                    RequestError::Timeout
                });
            }
            // The handler claimed it just now: it is copying; wait for it to finish.
            continue;
        }
        // While WRITING the handler is finishing a bounded copy: wait without deadline
        // cut-off, because the buffer must not be reused. Otherwise wake now and then to
        // notice an exited thread.
        let wait = if s == pack(seq, WRITING) {
            LIVENESS_POLL
        } else {
            deadline.saturating_duration_since(now).min(LIVENESS_POLL)
        };
        futex_wait(&m.state, s, wait);
    }
}

/// What the handler left in the mailbox and the buffer.
///
/// # Safety
/// The current request must be DONE. No other is published while the borrow of `_lock`
/// (and so the returned stack) lives.
unsafe fn take_reply<'a>(_lock: &'a Exclusive, m: &Mailbox) -> Result<Capture<'a>, RequestError> {
    if m.status.load(Ordering::Relaxed) == STATUS_FOREIGN_STACK {
        return Err(RequestError::ForeignStack);
    }
    let mut regs = [0u64; arch::NREGS];
    for (r, a) in regs.iter_mut().zip(&m.regs) {
        *r = a.load(Ordering::Relaxed);
    }
    let len = m.copy_len.load(Ordering::Relaxed).min(MAX_COPY);
    // SAFETY: the caller guarantees the handler is done with the buffer and that no new
    // request is published while the slice lives.
    let stack = unsafe { std::slice::from_raw_parts(STACK_BUF.0.get().cast::<u8>(), len) };
    Ok(Capture {
        regs,
        stack_base: m.copy_start.load(Ordering::Relaxed),
        stack,
    })
}

fn futex_wait(word: &AtomicU32, expected: u32, timeout: std::time::Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call. Spurious
    // returns (EINTR, EAGAIN, ETIMEDOUT) are handled by the caller's loop.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

/// The signal handler. Async-signal-safe: only atomics, `memcpy` of memory inside the
/// recorded stack bounds, and the `getpid`/`futex` system calls.
extern "C" fn on_signal(_sig: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t, laid out as QueueInfo.
    let info = unsafe { &*(info as *const QueueInfo) };
    // Only answer requests queued by this process; ignore anything else sent our way.
    // SAFETY: getpid is async-signal-safe and cannot fail.
    if info.code != libc::SI_QUEUE || info.pid != unsafe { libc::getpid() } {
        return;
    }
    let m = &MAILBOX;
    let seq = (info.value as u32) & (u32::MAX >> 2);
    if m.state
        .compare_exchange(
            pack(seq, REQUESTED),
            pack(seq, WRITING),
            Ordering::Acquire,
            Ordering::Relaxed,
        )
        .is_err()
    {
        return; // stale (the sampler gave up on it) or not ours
    }
    // SAFETY: __errno_location is async-signal-safe; we restore errno before returning
    // because the futex call below may change it under the interrupted code.
    let errno_ptr = unsafe { libc::__errno_location() };
    // SAFETY: valid thread-local errno pointer.
    let saved_errno = unsafe { *errno_ptr };

    let mut regs = [0u64; arch::NREGS];
    // SAFETY: `uc` is the context the kernel passed with SA_SIGINFO.
    unsafe { arch::read_context(uc as *const libc::ucontext_t, &mut regs) };
    for (a, r) in m.regs.iter().zip(regs) {
        a.store(r, Ordering::Relaxed);
    }
    // SAFETY: this is the handler, on the sampled thread, owning the request.
    unsafe { copy_stack(m, regs[arch::SP] as usize) };
    m.state.store(pack(seq, DONE), Ordering::Release);
    // SAFETY: futex wake on a valid static word; async-signal-safe system call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            m.state.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
        *errno_ptr = saved_errno;
    }
}

/// Copies the live stack from the interrupted `sp` up to the recorded top (at most
/// [`MAX_COPY`] bytes) into the buffer, or records that `sp` is outside the recorded
/// bounds (the interrupted code ran on another stack). Async-signal-safe.
///
/// # Safety
/// Only [`on_signal`] may call it, on the sampled thread, while it owns the request
/// (`WRITING`): the bounds are then that thread's own mapped stack and the buffer is
/// the handler's to write.
unsafe fn copy_stack(m: &Mailbox, sp: usize) {
    let lo = m.stack_lo.load(Ordering::Relaxed);
    let hi = m.stack_hi.load(Ordering::Relaxed);
    if lo < hi && sp >= lo && sp < hi {
        let len = (hi - sp).min(MAX_COPY);
        // SAFETY: [sp, sp+len) lies inside this thread's own stack, between the current
        // stack pointer and the top, which is mapped; the destination is the static
        // buffer that this handler owns until it publishes DONE (module docs).
        unsafe {
            std::ptr::copy_nonoverlapping(sp as *const u8, STACK_BUF.0.get().cast::<u8>(), len);
        }
        m.copy_start.store(sp, Ordering::Relaxed);
        m.copy_len.store(len, Ordering::Relaxed);
        m.status.store(STATUS_OK, Ordering::Relaxed);
    } else {
        m.copy_start.store(0, Ordering::Relaxed);
        m.copy_len.store(0, Ordering::Relaxed);
        m.status.store(STATUS_FOREIGN_STACK, Ordering::Relaxed);
    }
}
