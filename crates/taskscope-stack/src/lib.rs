//! Where is a stalled thread stuck? Capture another thread's stack *while it is
//! stalled* and turn it into `function (file:line)` frames.
//!
//! ```no_run
//! use std::time::Duration;
//! use taskscope_stack::{Sampler, Symbolizer, classify, user_frames};
//!
//! let sampler = Sampler::install()?;                 // once, e.g. when the watchdog starts
//! let worker = std::thread::spawn(|| {
//!     let me = Sampler::current_thread();            // on the worker itself, once
//!     # let _ = me;
//!     std::thread::sleep(Duration::from_secs(1));
//! });
//! # let target = Sampler::current_thread();
//! // Later, from the watchdog, when `target` has been in one poll for too long:
//! let mut symbolizer = Symbolizer::new();
//! let mut samples = Vec::new();
//! for _ in 0..3 {
//!     let addrs = sampler.sample(&target, Duration::from_millis(200))?;
//!     samples.push(symbolizer.symbolize(&addrs));
//!     std::thread::sleep(Duration::from_millis(20));
//! }
//! let activity = classify(&samples);                 // Blocked or Busy
//! let shown = user_frames(&samples[0]);              // the frames worth showing
//! # let _ = (activity, shown, worker);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How a sample is taken
//!
//! [`Sampler::install`] picks a free real-time signal and installs a handler for it.
//! [`Sampler::current_thread`], called on a worker thread, records its kernel thread id
//! and stack bounds. [`Sampler::sample`] sends the signal to that thread only (by tid,
//! with a request number); the kernel interrupts it wherever it is — including inside a
//! blocking system call — and the handler copies the interrupted registers and the live
//! part of the stack (stack pointer to stack top, at most 1 MiB) into a buffer allocated
//! at install time, then wakes the sampler. The sampler then walks that *copy* using the
//! binaries' `.eh_frame` unwind tables, and [`Symbolizer`] maps the addresses to source
//! lines with the DWARF line tables. The thread is held up only for the copy (a few
//! microseconds); an interrupted system call resumes (`SA_RESTART`, or std's `EINTR`
//! retry loops).
//!
//! # Why copy-then-unwind (and not unwinding in the handler)
//!
//! Three ways to walk the target's stack were considered:
//!
//! * **Frame pointers, in the handler.** Cheap and signal-safe with bounds checks, but
//!   Rust code (and std, and glibc) is built without frame pointers by default, and a
//!   leaf like `clock_nanosleep` or the `futex` wrapper never sets one up: the walk
//!   loses the very frames that say *what* blocked, and often everything above.
//! * **`_Unwind_Backtrace` in the handler** (what the `backtrace` crate's
//!   `trace_unsynchronized` does). Complete stacks, but it runs libgcc's DWARF
//!   interpreter on the interrupted thread: it reads memory wherever the unwind rules
//!   point (a wrong rule means a crash inside someone's service), its FDE lookup is
//!   lock-free only with `_dl_find_object` (glibc ≥ 2.35 and a libgcc built for it) and
//!   otherwise takes the loader lock (deadlock if the thread was inside `dlopen`), and
//!   its lazy one-time initialisation is not signal-safe.
//! * **Copy registers + live stack in the handler, unwind later on the sampler's thread**
//!   (the approach of `perf --call-graph=dwarf`). Chosen. The handler does nothing but
//!   bounds-checked `memcpy` and atomics; the unwinder runs in ordinary code, reads only
//!   the copy (every address is checked against it), and uses `.eh_frame`, which exists
//!   in every Linux binary regardless of debug-info or frame-pointer settings, so libc
//!   leaves and frame-pointer-less std frames unwind correctly. Costs: the copy (tens of
//!   KiB for a typical worker, up to 1 MiB), and frames deeper than the copy are cut off.
//!   Where a code address has no unwind rules (JIT code, hand-written assembly) the
//!   walker falls back to the frame-pointer chain, validated the same way. Unwind
//!   tables are found with glibc's lock-free `_dl_find_object` (2.35+), so a walk never
//!   waits for the loader lock the stalled thread may be holding; older glibc falls back
//!   to `dl_iterate_phdr` with the lock held.
//!
//! # Build settings for good stacks
//!
//! * **Unwinding** needs nothing special: `.eh_frame` is always emitted on Linux. Do not
//!   set `-C force-unwind-tables=no`. Frame pointers (`-C force-frame-pointers=yes`) are
//!   not required; they only help through code that lacks unwind tables.
//! * **`file:line`** needs line tables: debug builds have them; for release builds set
//!   `[profile.release] debug = "line-tables-only"` (this workspace does). Without any
//!   debug info, frames still get function names from the symbol table, but no lines.
//!   Do not strip the binary (`strip = true` or `strip = "debuginfo"` removes both).
//! * **Inlined calls** are expanded from the debug info, so the line of a call that was
//!   inlined is still exact. With `line-tables-only`, DWARF has only short names for
//!   inlined functions (`lock<u64>`): for std and crates.io sources the module path is
//!   rebuilt from the file (`std::sync::poison::mutex::lock<u64>`), the user's own
//!   inlined functions keep the short name (their `file:line` says where they are).
//!   `debug = true` or `"limited"` gives full paths everywhere, at the cost of larger
//!   binaries.
//!
//! # What the handler does and does not do
//!
//! It reads its `siginfo` and ignores anything not queued by this process with the
//! current request number; claims the request with one compare-exchange; copies
//! registers from the `ucontext` and `[sp, min(top, sp + 1 MiB))` from its own stack
//! (only if `sp` lies within the bounds recorded by [`Sampler::current_thread`]); marks
//! the request done and calls `futex(FUTEX_WAKE)`; restores `errno`. It never
//! allocates, locks, logs, unwinds, or reads memory outside the recorded stack. A
//! handler that runs after the sampler gave up finds its request number stale and
//! returns without writing. See `signal.rs` for the protocol.
//!
//! # Limits
//!
//! * Linux x86_64 and aarch64 only; elsewhere [`Sampler::install`] returns
//!   [`Unavailable::Platform`].
//! * A thread that blocks the chosen signal, or is stopped, times out
//!   ([`SampleError::Timeout`]).
//! * One sample at a time per process (calls are serialized).

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod arch;
mod error;
mod filter;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod modules;
mod sampler;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod signal;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod symbolize;
mod thread;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod walk;

pub use error::{SampleError, Unavailable};
pub use filter::{Activity, classify, innermost_user_frame, user_frames};
pub use sampler::Sampler;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub use symbolize::Symbolizer;
pub use thread::ThreadTarget;

/// One frame of a symbolized stack. Inlined calls appear as separate frames that share
/// the `address` of the instruction they were inlined at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Demangled function path without hash, e.g. `std::thread::functions::sleep`
    /// (std's own path of `std::thread::sleep`), a short name for an inlined function
    /// of a `line-tables-only` build, or `libc.so.6+0xe5d6f` when nothing better is
    /// known.
    pub function: String,
    /// Source file, as recorded in the debug info.
    pub file: Option<String>,
    /// 1-based source line.
    pub line: Option<u32>,
    /// 1-based source column.
    pub column: Option<u32>,
    /// The code address this frame was resolved from (see [`Sampler::sample`]).
    pub address: usize,
}

impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.function)?;
        if let Some(file) = &self.file {
            write!(f, " at {file}")?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
                if let Some(col) = self.column {
                    write!(f, ":{col}")?;
                }
            }
        }
        Ok(())
    }
}

/// Stand-in on platforms without sampling: every address resolves to itself.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
#[derive(Debug, Default)]
pub struct Symbolizer(());

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
impl Symbolizer {
    /// An empty symbolizer.
    pub fn new() -> Self {
        Symbolizer(())
    }

    /// Returns one unnamed frame per address.
    pub fn symbolize(&mut self, addrs: &[usize]) -> Vec<Frame> {
        addrs
            .iter()
            .map(|&address| Frame {
                function: format!("{address:#x}"),
                file: None,
                line: None,
                column: None,
                address,
            })
            .collect()
    }
}
