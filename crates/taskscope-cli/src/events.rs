//! `taskscope events`: the raw update stream as JSON lines, for scripts and for debugging
//! a probe.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use taskscope_api::recording::{ReadError, Reader};
use taskscope_api::v1::Update;

use crate::cli::EventsArgs;
use crate::source::protocol::{LiveWatch, Options};
use crate::source::{Address, Target, recording};

pub(crate) async fn run(args: EventsArgs) -> anyhow::Result<ExitCode> {
    match Target::parse(&args.target)? {
        Target::Live(address) => {
            let options = Options {
                protocol: args.protocol,
                connect_timeout: args.connect_timeout,
                ..Options::default()
            };
            live(&address, options).await
        }
        Target::Recording(path) => recordings(&path),
    }
}

/// Until the probe goes away or Ctrl-C; flushed per update so a pipe sees them at once.
/// A console-subscriber target's stream is printed as translated.
async fn live(address: &Address, options: Options) -> anyhow::Result<ExitCode> {
    let mut watch = LiveWatch::start(address, options).await?;
    let mut out = io::stdout().lock();
    loop {
        let update = tokio::select! {
            update = watch.next() => update?,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(update) = update else {
            return Ok(ExitCode::SUCCESS);
        };
        match print(&mut out, &update).and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
            Err(e) => return Err(e).context("cannot write to stdout"),
        }
    }
}

/// Every update of every recording. A cut recording is a warning (it is what a killed
/// process leaves); a damaged one prints what it could, then fails.
fn recordings(path: &Path) -> anyhow::Result<ExitCode> {
    let files = recording::files(path)?;
    if files.is_empty() {
        anyhow::bail!("{} holds no .tsrec recordings", path.display());
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut failed = false;
    for file in files {
        match print_recording(&mut out, &file) {
            Ok(()) => {}
            Err(Failure::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                return Ok(ExitCode::SUCCESS);
            }
            Err(Failure::Write(e)) => return Err(e).context("cannot write to stdout"),
            Err(Failure::Read(ReadError::Truncated { .. }, message)) => {
                eprintln!("taskscope: warning: {message}")
            }
            Err(Failure::Read(_, message)) => {
                eprintln!("taskscope: error: {message}");
                failed = true;
            }
        }
    }
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(e).context("cannot write to stdout");
        }
        _ => {}
    }
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

enum Failure {
    Read(ReadError, String),
    Write(io::Error),
}

fn print_recording(out: &mut impl Write, file: &Path) -> Result<(), Failure> {
    let reader = Reader::open(file).map_err(|e| {
        let message = e.to_string();
        Failure::Read(e, message)
    })?;
    let mut exited = false;
    for item in reader {
        match item {
            Ok(update) => {
                exited = update.process_exited;
                print(out, &update).map_err(Failure::Write)?;
            }
            Err(e) => {
                let message = e.to_string();
                out.flush().map_err(Failure::Write)?;
                return Err(Failure::Read(e, message));
            }
        }
    }
    if !exited {
        // Cut between two messages: readable to the end, but the process never said it
        // exited, so the last state printed is not its final one.
        out.flush().map_err(Failure::Write)?;
        eprintln!(
            "taskscope: warning: {} ends without the process's exit: it was killed, or is \
             still running",
            file.display()
        );
    }
    Ok(())
}

fn print(out: &mut impl Write, update: &Update) -> io::Result<()> {
    serde_json::to_writer(&mut *out, update).map_err(io::Error::from)?;
    out.write_all(b"\n")
}
