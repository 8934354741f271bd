//! `taskscope check`: observe (run a command, attach, or read recordings), judge, report,
//! and turn the verdict into the exit status.

mod allow_file;
mod attach;
mod child;
pub(crate) mod config;
mod signals;
mod traces;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use self::config::{Config, Mode};
use crate::cli::CheckArgs;
use crate::model::judge::judge;
use crate::model::{FILTERED_FIX, Instrumentation, Model};
use crate::report::text::Style;
use crate::report::{ChildExit, Format, Report, Verdict, github, json, junit, text};
use crate::source::recording;

/// What was observed.
struct Observed {
    models: Vec<Model>,
    /// The recordings the models were read from (none with --attach), and the temporary
    /// directory holding them with `-- CMD`, kept until the stall timelines are written.
    recordings: Vec<PathBuf>,
    _recording_dir: Option<tempfile::TempDir>,
    exit: Option<ChildExit>,
    /// The signal that stopped `check` while CMD ran or the --attach window was open.
    interrupted: Option<i32>,
}

pub(crate) async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let config = Config::from_args(args)?;
    for warning in &config.warnings {
        eprintln!("taskscope: warning: {warning}");
    }
    if let Some(file) = &config.allow_file {
        eprintln!("taskscope: allowances read from {}", file.display());
    }
    let observed = observe(&config).await?;
    let models = match observed.interrupted {
        // Whatever was seen is reported: the run is cut short, not unjudgeable.
        Some(_) => observed.models,
        None => usable(&config, observed.models, observed.exit)?,
    };
    let mut judgement = judge(&models, &config.policy);
    if let Some(dir) = &config.trace_dir {
        if observed.recordings.is_empty() {
            eprintln!(
                "taskscope: warning: --trace-dir writes timelines from recordings; with \
                 --attach there are none"
            );
        } else {
            let written = traces::write(dir, &observed.recordings, &mut judgement.findings)?;
            if written > 0 {
                eprintln!(
                    "taskscope: {written} stall timeline(s) written to {}",
                    dir.display()
                );
            }
        }
    }
    let command = match &config.mode {
        Mode::Run(command) => Some(command.as_slice()),
        Mode::Attach { .. } | Mode::Recording(_) => None,
    };
    let report = Report {
        judgement: &judgement,
        command,
        exit: observed.exit,
        stall_threshold_ns: config.policy.stall_threshold_ns,
        interrupted: observed.interrupted,
    };
    emit(&config, &report)?;
    Ok(match report.verdict() {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(1),
        // The shells' convention for "stopped by signal N".
        Verdict::Interrupted => {
            ExitCode::from(128u8.saturating_add(observed.interrupted.map_or(0, |n| n as u8)))
        }
    })
}

async fn observe(config: &Config) -> anyhow::Result<Observed> {
    match &config.mode {
        Mode::Run(command) => {
            let dir = tempfile::Builder::new()
                .prefix("taskscope-check-")
                .tempdir()
                .context("cannot create a temporary directory for the recordings; check TMPDIR")?;
            let settings = child::Settings {
                stall_threshold: config.stall_threshold,
                kill_after: config.kill_after,
            };
            let ended = child::run(command, dir.path(), settings).await?;
            let models = load_dir(dir.path())?;
            Ok(Observed {
                models,
                recordings: recording::files(dir.path())?,
                _recording_dir: Some(dir),
                exit: Some(ended.exit),
                interrupted: ended.interrupted,
            })
        }
        Mode::Attach { address, duration } => {
            let (model, interrupted) =
                attach::watch(address, *duration, config.live_options()).await?;
            Ok(Observed {
                models: vec![model],
                recordings: Vec::new(),
                _recording_dir: None,
                exit: None,
                interrupted,
            })
        }
        Mode::Recording(path) => {
            let models = load_dir(path)?;
            if models.is_empty() {
                bail!(
                    "{} holds no .tsrec recordings; recordings are written by apps run with \
                     TASKSCOPE_RECORD=PATH",
                    path.display()
                );
            }
            Ok(Observed {
                models,
                recordings: recording::files(path)?,
                _recording_dir: None,
                exit: None,
                interrupted: None,
            })
        }
    }
}

/// Loads every recording at `path`; an unreadable one stops the check, because judging
/// the rest would pass a build on partial evidence.
fn load_dir(path: &Path) -> anyhow::Result<Vec<Model>> {
    let mut models = Vec::new();
    for file in recording::files(path)? {
        let loaded =
            recording::load(&file).with_context(|| format!("cannot judge {}", file.display()))?;
        if let Some(offset) = loaded.truncated_at {
            eprintln!(
                "taskscope: warning: {} was cut at byte {offset} (the process was killed?); \
                 judging what it holds",
                file.display()
            );
        }
        models.push(loaded.model);
    }
    Ok(models)
}

/// Keeps the models that can be judged, or says why nothing can be (exit 2): no
/// instrumented process at all means a passing report would be a lie.
fn usable(
    config: &Config,
    models: Vec<Model>,
    exit: Option<ChildExit>,
) -> anyhow::Result<Vec<Model>> {
    let ran = match (&config.mode, exit) {
        (Mode::Run(command), Some(exit)) => format!("`{}` {}", command.join(" "), exit.describe()),
        _ => String::new(),
    };
    let seen: Vec<Model> = models
        .into_iter()
        .filter(|m| m.process().is_some())
        .collect();
    if seen.is_empty() {
        match &config.mode {
            Mode::Run(_) => bail!(
                "no instrumented process was seen: {ran} without writing a recording. Likely \
                 causes: the program neither uses #[taskscope::main] nor calls taskscope::init() \
                 (or builds its subscriber without the taskscope layer), or it does not \
                 honour TASKSCOPE_RECORD"
            ),
            Mode::Attach { address, .. } => {
                bail!("{address} sent nothing before the window closed; try a longer --duration")
            }
            Mode::Recording(path) => bail!("the recordings in {} hold no updates", path.display()),
        }
    }
    let before = if ran.is_empty() {
        String::new()
    } else {
        format!("{ran}, but ")
    };
    // One blind process is enough to withhold a verdict: its tasks were there, unseen.
    if let Some(blind) = seen
        .iter()
        .find(|m| m.instrumentation() == Instrumentation::Filtered)
    {
        bail!(
            "{before}nothing can be judged in {} (pid {}): {FILTERED_FIX}",
            blind.program(),
            blind.pid()
        );
    }
    // A process built without the cfg under the macros is judged on its workers.
    if seen
        .iter()
        .all(|m| m.instrumentation() == Instrumentation::Missing && !m.sees_workers_only())
    {
        bail!(
            "{before}no tokio instrumentation was seen: the program was built without \
             `--cfg tokio_unstable`, so tokio reports no tasks. Build it with \
             RUSTFLAGS=\"--cfg tokio_unstable\", or add to .cargo/config.toml:\n  \
             [build]\n  rustflags = [\"--cfg\", \"tokio_unstable\"]"
        );
    }
    Ok(seen)
}

/// Writes the report where it was asked for, and a text summary to stderr when the report
/// itself is not text on the terminal.
fn emit(config: &Config, report: &Report<'_>) -> anyhow::Result<()> {
    let to_stdout = config.output.is_none();
    let body = match config.format {
        Format::Text => {
            let style = if to_stdout {
                Style::detect(std::io::stdout().is_terminal())
            } else {
                Style::Plain
            };
            text::render(report, style)
        }
        Format::Json => json::render(report),
        Format::Junit => junit::render(report),
        Format::Github => github::render(report, repository_root().as_deref()),
    };
    match &config.output {
        Some(path) => std::fs::write(path, &body)
            .with_context(|| format!("cannot write the report to {}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is the reader's choice, not a failure to check.
            match out.write_all(body.as_bytes()).and_then(|()| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(e).context("cannot write the report to stdout");
                }
                _ => {}
            }
        }
    }
    if !(to_stdout && config.format == Format::Text) {
        let style = Style::detect(std::io::stderr().is_terminal());
        let mut summary = text::summary(report, style);
        for note in &report.judgement.notes {
            summary.push_str(&format!("note: {note}\n"));
        }
        let unused = if report.judgement.unused_allowances_fail {
            "error"
        } else {
            "note"
        };
        for allowance in &report.judgement.unused_allowances {
            summary.push_str(&format!("{unused}: {}\n", allowance.describe()));
        }
        eprint!("{summary}");
    }
    Ok(())
}

/// Where annotation paths are resolved: the Actions checkout, else the current directory.
fn repository_root() -> Option<PathBuf> {
    std::env::var_os("GITHUB_WORKSPACE")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
}
