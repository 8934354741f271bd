//! The command line: what each command and flag means (this is the `--help` text).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::model::judge::policy::FindingKind;
use crate::report::Format;
use crate::source::protocol::Protocol;

/// Finds what makes a tokio program slow or stuck: polls that block a worker thread
/// (stalls) and tasks that can never finish or outlive their runtime (leaks).
///
/// Apps opt in by swapping `#[tokio::main]` for `#[taskscope::main]` (or adding
/// `taskscope::layer()` to their subscriber), and must be built with
/// `RUSTFLAGS="--cfg tokio_unstable"`.
#[derive(Debug, Parser)]
#[command(
    name = "taskscope",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// With no command, `taskscope` attaches the dashboard to the default address.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// The token of a probe served over TCP (the app's TASKSCOPE_TOKEN). Not needed for
    /// an app of your own user on this host: its token file is found from the port.
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "TASKSCOPE_TOKEN",
        hide_env_values = true
    )]
    pub(crate) token: Option<String>,
    /// The certificate (PEM) of a probe served over TLS (the app's TASKSCOPE_TLS_CERT), or
    /// of the CA that signed it, to check an `https://` address against.
    #[arg(
        long,
        global = true,
        value_name = "PEM",
        env = "TASKSCOPE_TLS_CA",
        hide_env_values = true
    )]
    pub(crate) tls_ca: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Opens the dashboard on a running service: its tasks, stalls and leaks, live. Waits
    /// (and retries) while the service is down, and starts a fresh view when it restarts.
    ///
    /// Examples:
    ///
    ///   taskscope attach
    ///
    ///   taskscope attach 10.0.0.5:6670
    ///
    ///   taskscope attach unix:/tmp/app.sock
    ///
    ///   taskscope attach --tls-ca probe.pem https://127.0.0.1:6670
    ///
    ///   taskscope attach --protocol console 127.0.0.1:6669
    #[command(verbatim_doc_comment)]
    Attach(AttachArgs),
    /// Opens the dashboard on a recording (`TASKSCOPE_RECORD=FILE`), with play/pause,
    /// speed, seeking and jumps from stall to stall.
    ///
    /// Examples:
    ///
    ///   taskscope replay app-4242.tsrec
    #[command(verbatim_doc_comment)]
    Replay(ReplayArgs),
    /// Starts a bundled demo service (healthy tasks plus a stall, a lost waker, a growing
    /// spawn site, panics and aborts) and opens the dashboard on it. Quitting stops it.
    Demo,
    /// The demo's workload, run by `taskscope demo` in a child process.
    #[command(name = "__demo-workload", hide = true)]
    DemoWorkload,
    /// Runs a program (or test suite), watches a service, or reads recordings, and fails
    /// on stalls and leaks with file:line findings. Meant for CI.
    ///
    /// Exit status: 0 pass; 1 fail (an error finding, or CMD itself failed); 2 could not
    /// check (bad arguments, CMD could not start, unreadable recording, or no instrumented
    /// process seen); 128+N interrupted by signal N (SIGINT, SIGTERM, SIGHUP, SIGQUIT), with
    /// a report of what was seen until then.
    ///
    /// Examples:
    ///
    ///   taskscope check -- cargo test
    ///
    ///   taskscope check --format github --allow 'alive_at_shutdown@src/metrics.rs:*' -- cargo test
    ///
    ///   taskscope check --attach 127.0.0.1:6670 --duration 30s
    ///
    ///   taskscope check --attach 127.0.0.1:6669 --protocol console --duration 30s
    ///
    ///   taskscope check --recording target/taskscope/ --format json --output report.json
    #[command(verbatim_doc_comment)]
    Check(Box<CheckArgs>),
    /// Prints the raw update stream of a live probe or a recording as JSON lines (one
    /// `Update` per line), until the probe disconnects or Ctrl-C, or to the recording's end.
    ///
    /// Examples:
    ///
    ///   taskscope events 127.0.0.1:6670
    ///
    ///   taskscope events unix:/tmp/app.sock | jq 'select(.stalls != [])'
    ///
    ///   taskscope events app-4242.tsrec
    ///
    ///   taskscope events --protocol console 127.0.0.1:6669
    #[command(verbatim_doc_comment)]
    Events(EventsArgs),
    /// Writes the flight recorder's windows around the stalls of a recording as a
    /// timeline that Perfetto (ui.perfetto.dev) opens: a track per thread with its polls,
    /// each stall with its stack, task lives, spawn and wake arrows, and every thread's
    /// busy share over the whole recording. Streams the recording.
    /// Given a live probe's address instead, writes what its flight recorder holds of the
    /// last seconds, now, stall or not.
    ///
    /// Examples:
    ///
    ///   taskscope export --perfetto app-4242.tsrec -o app.trace.json
    ///
    ///   taskscope export --perfetto 127.0.0.1:6670 --span 5s -o now.trace.json
    #[command(verbatim_doc_comment)]
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AttachArgs {
    /// The probe's address: `http://host:port`, `host:port` or `unix:/path`
    /// [default: http://127.0.0.1:6670, or 127.0.0.1:6669 with `--protocol console`]
    #[arg(value_name = "ADDR")]
    pub(crate) address: Option<String>,

    /// The protocol the target speaks: taskscope's, or tokio-console's (a service running
    /// console-subscriber; fewer facts, see docs/interop.md). `auto` tries taskscope's
    /// first.
    #[arg(long, value_enum, default_value_t = Protocol::Auto)]
    pub(crate) protocol: Protocol,

    /// How long to wait for the target to connect and send its first update before showing
    /// why and trying again, e.g. `5s`, `30s`.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse, default_value = "5s", env = "TASKSCOPE_CONNECT_TIMEOUT")]
    pub(crate) connect_timeout: Duration,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// A recording file (`.tsrec`), or a directory holding one.
    #[arg(value_name = "PATH")]
    pub(crate) path: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Write Chrome's JSON trace-event format, which Perfetto and chrome://tracing open
    /// (the one format so far; required so that a later one can be asked for by name).
    #[arg(long, required = true)]
    pub(crate) perfetto: bool,

    /// A recording file (`.tsrec`), a directory of them (one process each), or a live
    /// probe's address (`127.0.0.1:6670`, `http://host:port`, `unix:/path`).
    #[arg(value_name = "RECORDING|ADDR")]
    pub(crate) source: String,

    /// The trace file to write.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub(crate) output: PathBuf,

    /// With a live probe: how far back from now the timeline starts, e.g. `5s`, within
    /// what the app's flight recorder holds (TASKSCOPE_FLIGHT)
    /// [default: the app's TASKSCOPE_FLIGHT_SPAN, 2s unless set]
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub(crate) span: Option<Duration>,

    /// With a live probe: how long to wait for it to connect and answer before giving up
    /// (exit 2), e.g. `5s`, `30s`.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse, default_value = "5s", env = "TASKSCOPE_CONNECT_TIMEOUT")]
    pub(crate) connect_timeout: Duration,
}

#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// A probe address (`127.0.0.1:6670`, `http://host:port`, `unix:/path`), a recording
    /// file, or a directory of recordings.
    #[arg(value_name = "ADDR|FILE")]
    pub(crate) target: String,

    /// The protocol a live target speaks: taskscope's, or tokio-console's (printed as
    /// translated into taskscope updates, see docs/interop.md). `auto` tries taskscope's
    /// first.
    #[arg(long, value_enum, default_value_t = Protocol::Auto)]
    pub(crate) protocol: Protocol,

    /// How long to wait for the target to connect and send its first update before giving
    /// up (exit 2), e.g. `5s`, `30s`.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse, default_value = "5s", env = "TASKSCOPE_CONNECT_TIMEOUT")]
    pub(crate) connect_timeout: Duration,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Watch a running service at this address instead of running a command
    /// (`127.0.0.1:6670`, `http://host:port`, `unix:/path`). Also looks for growth.
    #[arg(long, value_name = "ADDR", conflicts_with = "recording")]
    pub(crate) attach: Option<String>,

    /// How long to watch with --attach, e.g. `30s`, `2m`.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse, requires = "attach", default_value = "30s")]
    pub(crate) duration: Duration,

    /// The protocol the --attach target speaks: taskscope's, or tokio-console's (a service
    /// running console-subscriber: stalls at its 1 s granularity, no outcomes or stacks;
    /// see docs/interop.md). `auto` tries taskscope's first.
    #[arg(long, value_enum, default_value_t = Protocol::Auto, requires = "attach")]
    pub(crate) protocol: Protocol,

    /// How long to wait for the --attach target to connect and send its first update
    /// before giving up (exit 2), e.g. `5s`, `30s`.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse, default_value = "5s", env = "TASKSCOPE_CONNECT_TIMEOUT")]
    pub(crate) connect_timeout: Duration,

    /// Judge existing recordings: a `.tsrec` file, or a directory of them.
    #[arg(long, value_name = "PATH")]
    pub(crate) recording: Option<PathBuf>,

    /// A poll longer than this is a stall, e.g. `100ms`, `1.5s`. With `-- CMD` the probe
    /// is also set to report from this threshold.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse, default_value = "100ms", env = "TASKSCOPE_STALL_THRESHOLD")]
    pub(crate) stall_threshold: Duration,

    /// Tasks waiting on each other in a cycle (locks, permits, joins) for this long are a
    /// deadlock, e.g. `1s`, `500ms`. A cycle that resolves (a timeout, an abort) is none,
    /// however long it stood.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse, default_value = "1s", env = "TASKSCOPE_DEADLOCK_AFTER")]
    pub(crate) deadlock_after: Duration,

    /// Make these kinds errors (fail the check), e.g. `--fail-on panic,growth`.
    #[arg(long, value_name = "KIND,...", value_delimiter = ',', value_enum)]
    pub(crate) fail_on: Vec<FindingKind>,

    /// Make these kinds warnings (reported, but the check passes), e.g. `--warn-on stall`.
    #[arg(long, value_name = "KIND,...", value_delimiter = ',', value_enum)]
    pub(crate) warn_on: Vec<FindingKind>,

    /// Accept findings of KIND spawned at SITE, optionally only in tests matching TEST
    /// (repeatable), e.g. `alive_at_shutdown@src/metrics.rs:*` or
    /// `alive_at_shutdown@*#pool_*`. KIND is a kind or `*`; in SITE and TEST `*` matches
    /// anything and `?` one character; SITE may match from any directory on (`src/a.rs:*`
    /// accepts `crates/app/src/a.rs:12:5`). A bare SITE accepts every kind, with a warning.
    #[arg(long, value_name = "KIND@SITE[#TEST]")]
    pub(crate) allow: Vec<String>,

    /// Read allowances from this file instead of the `taskscope.toml` found in the current
    /// directory or a parent up to the repository's root (see docs/ci.md).
    #[arg(long, value_name = "PATH", conflicts_with = "no_config")]
    pub(crate) config: Option<PathBuf>,

    /// Read no `taskscope.toml`, only the allowances given with --allow.
    #[arg(long)]
    pub(crate) no_config: bool,

    /// Fail when an allowance accepted nothing (otherwise a note says so): keeps the
    /// allow-list from outliving the problems it accepted.
    #[arg(long)]
    pub(crate) fail_on_unused_allow: bool,

    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,

    /// Write the report to this file instead of stdout (a text summary still goes to
    /// stderr). Use it with machine formats when CMD prints to stdout.
    #[arg(long, value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,

    /// Write a timeline (Perfetto's JSON trace) of each stall finding's flight-recorder
    /// window into this directory, named in the report (`trace` in json, `timeline:` in
    /// text). Needs recordings: with `-- CMD` or `--recording`, not `--attach`.
    #[arg(long, value_name = "DIR")]
    pub(crate) trace_dir: Option<PathBuf>,

    /// After a terminating signal is forwarded to CMD's process group, how long CMD may
    /// take to stop before the group is killed (SIGKILL), e.g. `10s`, `500ms`.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse, default_value = "10s", env = "TASKSCOPE_KILL_AFTER")]
    pub(crate) kill_after: Duration,

    /// The command to run and check, after `--`. It runs in a process group of its own;
    /// its stdout and stderr are the terminal's, and so is its stdin unless that is a
    /// terminal (then it reads nothing); every instrumented process it starts is recorded.
    #[arg(last = true, value_name = "CMD")]
    pub(crate) command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kinds_are_comma_separated() {
        let cli = Cli::try_parse_from([
            "taskscope",
            "check",
            "--fail-on",
            "panic,growth",
            "--",
            "true",
        ])
        .unwrap();
        let Some(Command::Check(args)) = cli.command else {
            panic!()
        };
        assert_eq!(args.fail_on, [FindingKind::Panic, FindingKind::Growth]);
        assert_eq!(args.command, ["true"]);
    }
}
