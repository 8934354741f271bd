//! `taskscope demo`: a bundled, instrumented workload with one of every problem, and the
//! dashboard opened on it — what a new user runs first, with nothing to set up.
//!
//! The workload runs in a child process (this same binary, started with a hidden
//! subcommand), because it needs its own probe and runtime and must never share a
//! process with the dashboard that watches it. The two meet on a Unix socket in a
//! temporary directory; quitting the dashboard kills the child.

pub(crate) mod workload;

use std::process::{ExitCode, Stdio};

use anyhow::Context;

use crate::source::Address;

/// The hidden subcommand the child runs.
pub(crate) const WORKLOAD_COMMAND: &str = "__demo-workload";

pub(crate) async fn run() -> anyhow::Result<ExitCode> {
    crate::tui::need_terminal()?;
    let dir = tempfile::Builder::new()
        .prefix("taskscope-demo-")
        .tempdir()
        .context("cannot create a temporary directory for the demo's socket; check TMPDIR")?;
    let socket = dir.path().join("demo.sock");
    let log = std::fs::File::create(dir.path().join("workload.log"))
        .context("cannot create the demo's log file")?;
    let exe = std::env::current_exe().context("cannot find this program to start the demo")?;
    let mut child = tokio::process::Command::new(exe)
        .arg(WORKLOAD_COMMAND)
        .env("TASKSCOPE_BIND", format!("unix:{}", socket.display()))
        .env("TASKSCOPE_WAKERS", "on")
        .env_remove("TASKSCOPE_RECORD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the demo workload")?;
    let result = crate::tui::watch(Address::Unix(socket), Some("demo".to_owned())).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    result.map(|()| ExitCode::SUCCESS)
}
