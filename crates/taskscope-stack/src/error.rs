//! Errors, worded so that whoever reads them knows what to do next.

use thiserror::Error;

/// Why stack sampling cannot be set up in this process.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// This OS / architecture has no implementation.
    #[error(
        "stack sampling is only implemented on Linux x86_64 and aarch64 (this is {os} {arch}); stall reports will have no stacks"
    )]
    Platform {
        /// `std::env::consts::OS`.
        os: &'static str,
        /// `std::env::consts::ARCH`.
        arch: &'static str,
    },
    /// Every candidate real-time signal already has a handler installed by someone else.
    #[error(
        "no free real-time signal for stack sampling: signals {first}..={last} all have handlers installed by other code; free one of them or leave stall stacks off"
    )]
    NoFreeSignal {
        /// First signal number tried.
        first: i32,
        /// Last signal number tried.
        last: i32,
    },
    /// A system call needed for setup failed.
    #[error(
        "stack sampling setup failed: {call} returned {errno} ({message}); stall reports will have no stacks"
    )]
    Os {
        /// Which call failed.
        call: &'static str,
        /// The `errno` value.
        errno: i32,
        /// `strerror` text for it.
        message: String,
    },
}

/// Why one [`Sampler::sample`](crate::Sampler::sample) call produced no stack.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SampleError {
    /// The target thread has exited (or its id now names no thread of this process).
    #[error("the thread has exited; take stacks only from threads that are still running")]
    ThreadGone,
    /// The target did not run the handler in time: it blocks the signal, is stopped
    /// (e.g. under a debugger), or the machine is badly overloaded.
    #[error(
        "the thread did not answer the sampling signal within {timeout_ms} ms (it may block the signal, be stopped, or the machine is overloaded); retry with a longer timeout"
    )]
    Timeout {
        /// The timeout that passed, in milliseconds.
        timeout_ms: u64,
    },
    /// The thread was running on a stack other than the one recorded by
    /// [`Sampler::current_thread`](crate::Sampler::current_thread) (an alternate signal
    /// stack, a coroutine stack, or the thread id was reused); its memory was not read.
    #[error(
        "the thread was not on its recorded stack (signal stack, coroutine, or reused thread id); its stack was not read — sample again later"
    )]
    ForeignStack,
    /// Sending the signal failed for a reason other than the thread being gone.
    #[error("sending the sampling signal failed with errno {errno} ({message})")]
    Signal {
        /// The `errno` value.
        errno: i32,
        /// `strerror` text for it.
        message: String,
    },
    /// This platform has no implementation (see [`Unavailable::Platform`]).
    #[error("stack sampling is not implemented on this platform")]
    Unsupported,
}
