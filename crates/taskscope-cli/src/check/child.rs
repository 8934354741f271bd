//! Running the checked command: a fresh recording directory, the probe's settings in its
//! environment, the terminal passed through, and signals forwarded so that stopping
//! `check` stops the command and still leaves a report.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};

use crate::report::ChildExit;

/// Runs `command` recording into `dir` and waits for it.
pub(crate) async fn run(
    command: &[String],
    dir: &Path,
    stall_threshold: Duration,
) -> anyhow::Result<ChildExit> {
    let (program, args) = command
        .split_first()
        .context("no command given after `--`")?;
    let mut child = Command::new(program)
        .args(args)
        .env("TASKSCOPE_RECORD", dir)
        .env("TASKSCOPE_BIND", "off")
        // Lost wakers can only be told from tasks alive at shutdown with waker counts.
        // `auto`: wherever the program's route sees wakers, and without a word where it
        // does not (the hooks route), so that the program's output stays its own.
        .env("TASKSCOPE_WAKERS", "auto")
        .env(
            "TASKSCOPE_STALL_THRESHOLD",
            format!("{}us", stall_threshold.as_micros().max(1)),
        )
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!("cannot start `{program}`: {e}; check that it is installed and on PATH")
        })?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.with_context(|| format!("lost track of `{program}`"))?,
            _ = interrupt.recv() => {
                // Ctrl-C at a terminal already reached the command (it is in our foreground
                // process group); sending a second one would turn a graceful shutdown into
                // a forced one. Forward only an interrupt sent to us alone.
                if !terminal_signals_reach_child() {
                    forward(child.id(), libc::SIGINT);
                }
            }
            _ = terminate.recv() => forward(child.id(), libc::SIGTERM),
        }
    };
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => ChildExit::Code(code),
        (None, Some(signal)) => ChildExit::Signal(signal),
        (None, None) => ChildExit::Code(-1),
    })
}

/// Whether we are in the foreground process group of a terminal, so that a Ctrl-C typed
/// there is delivered to the child as well.
fn terminal_signals_reach_child() -> bool {
    // SAFETY: plain syscalls without pointers; a failure returns -1, never our group.
    unsafe { libc::tcgetpgrp(libc::STDIN_FILENO) == libc::getpgrp() }
}

fn forward(pid: Option<u32>, signal: libc::c_int) {
    if let Some(pid) = pid.and_then(|pid| libc::pid_t::try_from(pid).ok()) {
        // SAFETY: kill has no memory effects; the pid is our own child, not yet reaped
        // (tokio reaps it only through `wait`, which has not returned).
        unsafe {
            libc::kill(pid, signal);
        }
    }
}
