//! [`Sampler`]: the public face of capturing another thread's stack.

use std::sync::OnceLock;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::error::{SampleError, Unavailable};
use crate::thread::{self, ThreadTarget};

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
use crate::{signal, walk::Walker};

/// Captures stacks of other threads of this process. Cheap to clone; all clones share
/// the process-wide signal handler and serialize their [`sample`](Self::sample) calls.
#[derive(Clone)]
pub struct Sampler {
    inner: &'static Inner,
}

struct Inner {
    signal: i32,
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    state: Mutex<State>,
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
struct State {
    exclusive: signal::Exclusive,
    walker: Walker,
    seq: u32,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("signal", &self.inner.signal)
            .finish()
    }
}

static INSTALLED: OnceLock<Result<&'static Inner, Unavailable>> = OnceLock::new();

impl Sampler {
    /// Sets up sampling for the whole process: picks a real-time signal nobody else
    /// handles (from `SIGRTMIN+5` up) and installs the handler on it with
    /// `SA_SIGINFO | SA_RESTART | SA_ONSTACK`. Signals that already have a handler are
    /// skipped, never taken over. Idempotent: later calls return the same sampler.
    /// Nothing runs afterwards until [`sample`](Self::sample) is called.
    pub fn install() -> Result<Sampler, Unavailable> {
        INSTALLED
            .get_or_init(|| install_once().map(|inner| &*Box::leak(Box::new(inner))))
            .clone()
            .map(|inner| Sampler { inner })
    }

    /// Records the calling thread (kernel tid, stack bounds, a liveness flag cleared
    /// when it exits) so that it can be sampled later from another thread. Call it on
    /// the thread itself, e.g. when a worker starts; repeated calls are cheap.
    pub fn current_thread() -> ThreadTarget {
        thread::current()
    }

    /// The real-time signal number this process uses for sampling.
    pub fn signal(&self) -> i32 {
        self.inner.signal
    }

    /// Captures `target`'s stack as it is right now, waiting at most `timeout` for the
    /// thread to answer (it answers as soon as the kernel schedules it, even inside a
    /// blocking system call, which is resumed afterwards).
    ///
    /// Returns code addresses, innermost first: the first is the instruction the thread
    /// was interrupted at; each later one is a return address minus one (inside the
    /// call instruction), ready for [`Symbolizer::symbolize`](crate::Symbolizer::symbolize).
    pub fn sample(
        &self,
        target: &ThreadTarget,
        timeout: Duration,
    ) -> Result<Vec<usize>, SampleError> {
        self.sample_impl(target, timeout)
    }

    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    fn sample_impl(
        &self,
        target: &ThreadTarget,
        timeout: Duration,
    ) -> Result<Vec<usize>, SampleError> {
        use signal::RequestError;
        if !target.is_alive() {
            return Err(SampleError::ThreadGone);
        }
        if target.stack.0 >= target.stack.1 {
            return Err(SampleError::ForeignStack);
        }
        let mut guard = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let state = &mut *guard;
        state.seq = state.seq.wrapping_add(1);
        if !target.is_alive() {
            return Err(SampleError::ThreadGone);
        }
        let reply = signal::request(
            &state.exclusive,
            self.inner.signal,
            target.tid,
            target.stack,
            state.seq,
            timeout,
            &target.alive,
        );
        match reply {
            Ok(capture) => Ok(state.walker.walk(&capture)),
            Err(RequestError::Send(libc::ESRCH)) => Err(SampleError::ThreadGone),
            Err(RequestError::Send(errno)) => Err(SampleError::Signal {
                errno,
                message: std::io::Error::from_raw_os_error(errno).to_string(),
            }),
            Err(RequestError::Gone) => Err(SampleError::ThreadGone),
            Err(RequestError::Timeout) if !target.is_alive() => Err(SampleError::ThreadGone),
            Err(RequestError::Timeout) => Err(SampleError::Timeout {
                timeout_ms: timeout.as_millis().try_into().unwrap_or(u64::MAX),
            }),
            Err(RequestError::ForeignStack) => Err(SampleError::ForeignStack),
        }
    }

    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    fn sample_impl(&self, _: &ThreadTarget, _: Duration) -> Result<Vec<usize>, SampleError> {
        Err(SampleError::Unsupported)
    }
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn install_once() -> Result<Inner, Unavailable> {
    let signal = signal::install()?;
    Ok(Inner {
        signal,
        state: Mutex::new(State {
            exclusive: signal::Exclusive(()),
            walker: Walker::new(),
            seq: 0,
        }),
    })
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn install_once() -> Result<Inner, Unavailable> {
    Err(Unavailable::Platform {
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
    })
}
