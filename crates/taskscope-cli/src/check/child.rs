//! Running the checked command: a fresh recording directory, the probe's settings in its
//! environment, and signals handled so that stopping `check` stops the command and
//! everything it started, and still leaves a report.
//!
//! The command runs in its own process group, so that a signal reaches it and all its
//! descendants at once (`bash -c 'app; echo'` stops `app` too), and so that `check` alone
//! decides what the command receives. Every terminating signal `check` gets (SIGINT,
//! SIGTERM, SIGHUP, SIGQUIT) is forwarded to that group; if the command is still running
//! after the grace period, the group is killed. `PR_SET_PDEATHSIG` kills the command if
//! `check` itself is killed without a chance to run (SIGKILL).

use std::os::unix::process::{CommandExt as _, ExitStatusExt};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

use super::signals::Terminating;
use crate::report::ChildExit;

/// How the command ended, and whether `check` was told to stop meanwhile.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ended {
    pub(crate) exit: ChildExit,
    /// The first terminating signal `check` received while the command ran.
    pub(crate) interrupted: Option<i32>,
}

/// What running the command needs besides the command line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) stall_threshold: Duration,
    /// How long the command may take to stop after a forwarded signal before it is killed.
    pub(crate) kill_after: Duration,
}

/// Runs `command` recording into `dir` and waits for it.
pub(crate) async fn run(
    command: &[String],
    dir: &Path,
    settings: Settings,
) -> anyhow::Result<Ended> {
    let (program, args) = command
        .split_first()
        .context("no command given after `--`")?;
    // Listening before the command starts: a signal that arrives while it starts is not
    // lost (nor does it kill `check` before it can forward it).
    let mut signals = Terminating::listen()?;
    let mut child = spawn(program, args, dir, settings.stall_threshold)?;
    let group = child
        .id()
        .and_then(|pid| libc::pid_t::try_from(pid).ok())
        .context("the command has no process id")?;
    let mut interrupted = None;
    // Counted from the first signal: more signals do not postpone the kill.
    let mut kill_at = None;
    let status = loop {
        let grace = async {
            match kill_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => break status.with_context(|| format!("lost track of `{program}`"))?,
            number = signals.recv() => {
                interrupted.get_or_insert(number);
                kill_at.get_or_insert_with(|| tokio::time::Instant::now() + settings.kill_after);
                signal_group(group, number);
            }
            () = grace => {
                signal_group(group, libc::SIGKILL);
                break child.wait().await.with_context(|| format!("lost track of `{program}`"))?;
            }
        }
    };
    if interrupted.is_some() {
        // What the command started and left behind (a background job of a shell) would
        // outlive the check otherwise.
        signal_group(group, libc::SIGKILL);
    }
    let exit = match (status.code(), status.signal()) {
        (Some(code), _) => ChildExit::Code(code),
        (None, Some(signal)) => ChildExit::Signal(signal),
        (None, None) => ChildExit::Code(-1),
    };
    Ok(Ended { exit, interrupted })
}

/// Starts the command in a process group of its own, dying with `check`.
fn spawn(
    program: &str,
    args: &[String],
    dir: &Path,
    stall_threshold: Duration,
) -> anyhow::Result<Child> {
    let mut command = Command::new(program);
    command
        .args(args)
        .env("TASKSCOPE_RECORD", dir)
        .env("TASKSCOPE_BIND", "off")
        // Lost wakers can only be told from tasks alive at shutdown with waker counts.
        // `auto`: wherever the program's route sees wakers, and without a word where it
        // does not (the hooks route), so that the program's output stays its own.
        .env("TASKSCOPE_WAKERS", "auto")
        // Where leaked tasks wait: `#[taskscope::main]` dumps its runtime before it shuts
        // down; the runtime `taskscope::init()` runs in ends out of the probe's sight, so
        // it is dumped whenever tasks have gone idle, and the last dump is in the recording.
        .env("TASKSCOPE_DUMP_WHEN_IDLE", "200ms")
        .env(
            "TASKSCOPE_STALL_THRESHOLD",
            format!("{}us", stall_threshold.as_micros().max(1)),
        )
        .stdin(stdin())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .process_group(0);
    // SAFETY: getpid has no preconditions and touches no memory.
    let parent = unsafe { libc::getpid() };
    // SAFETY: `pre_exec` runs between fork and exec; it only makes async-signal-safe
    // syscalls (prctl, getppid, _exit) on values copied in before the fork.
    unsafe {
        command.as_std_mut().pre_exec(move || {
            die_with_parent(parent);
            Ok(())
        });
    }
    command.spawn().map_err(|e| {
        anyhow::anyhow!("cannot start `{program}`: {e}; check that it is installed and on PATH")
    })
}

/// In the forked child: ask for SIGKILL when the parent goes. The parent here is the
/// thread that forked, which is the runtime's only thread (`main` runs a current-thread
/// runtime), so it lives as long as `check`. If `check` died before this call, the signal
/// would never come: exit instead.
fn die_with_parent(parent: libc::pid_t) {
    // SAFETY: plain syscalls without pointers; `_exit` is what a forked child may call.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
}

/// The terminal's stdin is not the command's to read: in a process group of its own it
/// would be stopped (SIGTTIN) on its first read, and the check would hang. A pipe or a file
/// is passed through.
fn stdin() -> Stdio {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        Stdio::null()
    } else {
        Stdio::inherit()
    }
}

fn signal_group(group: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill has no memory effects. The group is the command's own: its leader is
    // our child, and a group id is not reused while any member lives.
    unsafe {
        libc::kill(-group, signal);
    }
}
