//! The last word at process exit: publish what is pending and get it into the recording.
//!
//! When `main` returns, `#[tokio::main]` has just shut its runtime down, and the outcome
//! of every task still pending then (the basis of "alive at shutdown" findings) is still
//! in the probe's queues. An `atexit` handler gives the probe's thread a bounded moment to
//! write it out and mark the recording complete; a stuck disk delays exit by at most
//! [`EXIT_WAIT`], never forever.

use std::time::Duration;

use crate::serve::command::Command;

/// The longest a process exit waits for the probe.
const EXIT_WAIT: Duration = Duration::from_secs(3);

static REGISTER: std::sync::Once = std::sync::Once::new();

/// Flushes the process's probe (`probe.rs`) when the process exits: `atexit` takes no
/// argument, so the handler finds the probe there.
pub(crate) fn flush_at_exit() {
    REGISTER.call_once(|| {
        // SAFETY: `at_exit` is a plain `extern "C" fn()` that does not unwind.
        unsafe {
            libc::atexit(at_exit);
        }
    });
}

/// Publishes everything pending on the running probe and waits (bounded) for it to be
/// written. A probe shut down earlier has flushed already and no longer takes the command.
fn flush() {
    let Some(probe) = crate::setup::probe::running() else {
        return;
    };
    let (done, receiver) = std::sync::mpsc::channel();
    if probe.commands.send(Command::FinalFlush(done)).is_ok() {
        let _ = receiver.recv_timeout(EXIT_WAIT);
    }
}

extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(flush);
}
