//! The last word at process exit: publish what is pending and get it into the recording.
//!
//! When `main` returns, `#[tokio::main]` has just shut its runtime down, and the outcome
//! of every task still pending then (the basis of "alive at shutdown" findings) is still
//! in the probe's queues. An `atexit` handler gives the probe's thread a bounded moment to
//! write it out and mark the recording complete; a stuck disk delays exit by at most
//! [`EXIT_WAIT`], never forever.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::serve::runner::Command;

/// The longest a process exit waits for the probe.
const EXIT_WAIT: Duration = Duration::from_secs(3);

/// The probes started in this process, to flush at process exit: the exit handler
/// (`atexit`) takes no arguments, so it finds them here. Registered once (`REGISTER`).
static PROBES: Mutex<Vec<mpsc::UnboundedSender<Command>>> = Mutex::new(Vec::new());
static REGISTER: std::sync::Once = std::sync::Once::new();

/// Flushes `commands`' probe when the process exits.
pub(crate) fn flush_at_exit(commands: mpsc::UnboundedSender<Command>) {
    PROBES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(commands);
    REGISTER.call_once(|| {
        // SAFETY: `at_exit` is a plain `extern "C" fn()` that does not unwind.
        unsafe {
            libc::atexit(at_exit);
        }
    });
}

/// The first probe started in this process (the one the macros' runtimes report to).
#[cfg(taskscope_dumps)]
pub(crate) fn first_probe() -> Option<mpsc::UnboundedSender<Command>> {
    PROBES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .first()
        .cloned()
}

/// Publishes everything pending on the probe still running and waits (bounded) for it to
/// be written. One probe runs at a time (`builder.rs`, `RUNNING`); one shut down earlier
/// has flushed already and no longer takes the command.
pub(crate) fn flush_all() {
    let deadline = Instant::now() + EXIT_WAIT;
    let probes = PROBES.lock().map(|p| p.clone()).unwrap_or_default();
    let waiting: Vec<_> = probes
        .iter()
        .filter_map(|commands| {
            let (done, receiver) = std::sync::mpsc::channel();
            commands.send(Command::FinalFlush(done)).ok()?;
            Some(receiver)
        })
        .collect();
    for receiver in waiting {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = receiver.recv_timeout(left);
    }
}

extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(flush_all);
}
