//! Running one measurement: start a child in one mode, attach a watcher when the mode or
//! workload needs one, enforce the time and memory caps, and collect the child's rusage.
//!
//! The child is reaped with `wait4`, which gives its CPU time and peak RSS alone (not the
//! sum over every child so far, as `RUSAGE_CHILDREN` would).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::child::{ChildReport, SUBCOMMAND};
use crate::measure;
use crate::mode::Mode;
use crate::watch::{WatchSummary, Watcher};
use crate::workload::{Timing, Workload};

/// How long a watched child stays up after its workload: a few of the probe's default
/// publish intervals, so that the client receives the final deltas.
const LINGER: Duration = Duration::from_millis(300);

/// How a run ended.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "status", content = "detail")]
pub(crate) enum Status {
    Ok,
    /// Killed after `--timeout`.
    Timeout,
    /// Killed when its RSS passed `--rss-cap`.
    RssCap,
    /// Exited without a result.
    Failed(String),
}

/// One child run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    pub(crate) workload: Workload,
    pub(crate) mode: Mode,
    /// 0 for the warm-up.
    pub(crate) rep: u32,
    pub(crate) size: u64,
    #[serde(flatten)]
    pub(crate) status: Status,
    /// CPU time (user + system) of the whole child from start to exit, from `wait4`
    /// (the table uses the workload's own CPU time, in `report`).
    pub(crate) process_cpu_ns: u64,
    /// Peak resident memory of the child, from `wait4`.
    pub(crate) peak_rss_bytes: u64,
    /// Wall time of the child from start to exit, as the harness saw it.
    pub(crate) process_wall_ns: u64,
    pub(crate) report: Option<ChildReport>,
    pub(crate) watch: Option<WatchSummary>,
}

/// What one run is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Job {
    pub(crate) workload: Workload,
    pub(crate) mode: Mode,
    pub(crate) rep: u32,
    pub(crate) size: u64,
    pub(crate) timing: Timing,
    pub(crate) timeout: Duration,
    pub(crate) rss_cap_bytes: u64,
}

/// Runs one child to its end (or kills it at a cap).
pub(crate) fn run(job: Job) -> anyhow::Result<Run> {
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let port = free_port()?;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let watched = matches!(
        job.mode,
        Mode::TaskscopeWatch | Mode::TaskscopeWatchUnfolded
    ) || (job.workload == Workload::StallLatency && job.mode.is_taskscope());
    let linger = if watched { LINGER } else { Duration::ZERO };
    let mut command = Command::new(crate::builds::binary_for(job.mode)?);
    command
        .args([
            SUBCOMMAND,
            job.mode.name(),
            job.workload.name(),
            &job.size.to_string(),
            &job.timing.serve_window.as_millis().to_string(),
            &linger.as_millis().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The child's set-up must be exactly its mode's, whatever this shell exports.
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("TASKSCOPE_") || name_text.starts_with("TOKIO_CONSOLE_") {
            command.env_remove(&name);
        }
    }
    command.env_remove("RUST_LOG");
    match job.mode {
        Mode::None | Mode::Plain => {}
        Mode::Console => {
            command.env("TOKIO_CONSOLE_BIND", address.to_string());
        }
        _ => {
            command.env("TASKSCOPE_BIND", address.to_string());
            command.env("TASKSCOPE_TOKEN", crate::watch::token());
        }
    }
    if job.mode == Mode::TaskscopeRecord {
        command.env("TASKSCOPE_RECORD", scratch.path().join("bench.tsrec"));
    }
    if job.mode == Mode::TaskscopeWatchUnfolded {
        command.env("TASKSCOPE_FOLD", "off");
    }
    if job.mode == Mode::TaskscopeNoFlight {
        command.env("TASKSCOPE_FLIGHT", "off");
    }
    if job.mode == Mode::TaskscopeNoHolders {
        command.env("TASKSCOPE_HOLDERS", "off");
    }
    if job.mode == Mode::TaskscopeWakers {
        command.env("TASKSCOPE_WAKERS", "on");
    }
    let scraper = (job.mode == Mode::TaskscopeMetrics)
        .then(|| -> anyhow::Result<Scraper> {
            let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            command.env("TASKSCOPE_METRICS_BIND", metrics.to_string());
            Ok(Scraper::start(metrics))
        })
        .transpose()?;

    let started = Instant::now();
    let mut child = command.spawn().context("cannot start a child run")?;
    let stdin = child.stdin.take();
    let lines = read_lines(&mut child);
    let stderr = read_all(&mut child);
    let mut session = Session {
        pid: child.id() as libc::pid_t,
        stdin,
        lines,
        watcher: None,
        report: None,
        result_unix_ns: None,
        started,
    };
    let (status, usage, wait_status) = session.supervise(job, watched.then_some(address));
    drop(scraper);
    let process_wall = started.elapsed();
    let watch = session
        .watcher
        .take()
        .map(Watcher::finish)
        .map(|mut watch| {
            watch.cut_off = matches!(
                (watch.stream_closed_unix_ns, session.result_unix_ns),
                (Some(closed), Some(result)) if closed < result
            );
            watch
        });
    let status = match (status, &session.report) {
        (Status::Ok, None) => {
            let stderr = stderr
                .recv_timeout(Duration::from_secs(1))
                .unwrap_or_default();
            Status::Failed(format!(
                "{}: {}",
                describe_exit(wait_status),
                last_lines(&stderr, 8)
            ))
        }
        (status, _) => status,
    };
    drop(child);
    Ok(Run {
        workload: job.workload,
        mode: job.mode,
        rep: job.rep,
        size: job.size,
        status,
        process_cpu_ns: measure::rusage_cpu(&usage).as_nanos() as u64,
        peak_rss_bytes: usage.ru_maxrss as u64 * 1024,
        process_wall_ns: process_wall.as_nanos() as u64,
        report: session.report,
        watch,
    })
}

/// The harness's side of one child's life.
struct Session {
    pid: libc::pid_t,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    watcher: Option<Watcher>,
    report: Option<ChildReport>,
    /// When the child's result arrived (Unix ns).
    result_unix_ns: Option<u64>,
    started: Instant,
}

impl Session {
    /// Follows the child until it exits, killing it at a cap; returns how it ended, its
    /// resource usage and its wait status.
    fn supervise(
        &mut self,
        job: Job,
        watch: Option<SocketAddr>,
    ) -> (Status, libc::rusage, libc::c_int) {
        let mut status = Status::Ok;
        loop {
            if let Some((usage, wait_status)) = self.reap(libc::WNOHANG) {
                // The child can exit before its last lines have crossed the pipe.
                self.drain_lines(watch);
                return (status, usage, wait_status);
            }
            if status == Status::Ok {
                if self.started.elapsed() > job.timeout {
                    status = Status::Timeout;
                } else if measure::rss_bytes(&self.pid.to_string())
                    .is_some_and(|rss| rss > job.rss_cap_bytes)
                {
                    status = Status::RssCap;
                }
                if status != Status::Ok {
                    // SAFETY: kill has no memory-safety preconditions; pid is our child,
                    // not yet reaped.
                    unsafe { libc::kill(self.pid, libc::SIGKILL) };
                    let (usage, wait_status) = self.reap(0).unwrap_or((zeroed_rusage(), 0));
                    return (status, usage, wait_status);
                }
            }
            match self.lines.recv_timeout(Duration::from_millis(10)) {
                Ok(line) => self.on_line(&line, watch),
                Err(RecvTimeoutError::Timeout) => {}
                // stdout closed: the child is exiting; keep reaping.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Reads what is left of the child's output, up to the end of the pipe.
    fn drain_lines(&mut self, watch: Option<SocketAddr>) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.on_line(&line, watch);
        }
    }

    fn on_line(&mut self, line: &str, watch: Option<SocketAddr>) {
        if line == "ready" {
            if let Some(address) = watch {
                match Watcher::start(address) {
                    Ok(watcher) => {
                        // Without the first update the stall-latency figures would be wrong;
                        // a probe that never answers shows up as a watch error instead.
                        watcher.wait_attached(Duration::from_secs(10));
                        self.watcher = Some(watcher);
                    }
                    Err(e) => eprintln!("taskscope-bench: cannot start a watcher: {e}"),
                }
            }
            if let Some(stdin) = self.stdin.as_mut() {
                let _ = stdin.write_all(b"go\n").and_then(|()| stdin.flush());
            }
        } else if let Some(json) = line.strip_prefix("result ") {
            self.result_unix_ns = Some(crate::watch::unix_now_ns());
            match serde_json::from_str(json) {
                Ok(report) => self.report = Some(report),
                Err(e) => eprintln!("taskscope-bench: unreadable child result ({e}): {json}"),
            }
        }
    }

    /// `wait4` on the child: its usage and wait status once it has exited.
    fn reap(&self, flags: libc::c_int) -> Option<(libc::rusage, libc::c_int)> {
        let mut usage = zeroed_rusage();
        let mut wait_status = 0;
        // SAFETY: wait4 writes only into the two values we pass.
        let reaped = unsafe { libc::wait4(self.pid, &mut wait_status, flags, &mut usage) };
        (reaped == self.pid).then_some((usage, wait_status))
    }
}

fn describe_exit(wait_status: libc::c_int) -> String {
    if libc::WIFSIGNALED(wait_status) {
        format!("killed by signal {}", libc::WTERMSIG(wait_status))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(wait_status))
    }
}

fn zeroed_rusage() -> libc::rusage {
    // SAFETY: rusage is plain old data; all zeroes is a valid value.
    unsafe { std::mem::zeroed() }
}

/// A port nobody listens on right now (the child binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free local port")?;
    Ok(listener.local_addr()?.port())
}

fn read_lines(child: &mut Child) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
    }
    receiver
}

fn read_all(child: &mut Child) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = sender.send(text);
        });
    }
    receiver
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(count);
    let tail = lines[from..].join(" | ");
    if tail.is_empty() {
        "the child exited without a result and said nothing".into()
    } else {
        tail
    }
}

/// Scrapes a child's metrics endpoint once a second, as a monitoring system would, until
/// dropped.
struct Scraper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Scraper {
    fn start(address: SocketAddr) -> Self {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let timeout = Duration::from_secs(2);
                if let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, timeout) {
                    let _ = stream.set_read_timeout(Some(timeout));
                    let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
                    let _ = stream.read_to_end(&mut Vec::new());
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        Self { stop }
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
