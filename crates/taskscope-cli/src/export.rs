//! `taskscope export`: a recording's flight-recorder windows as a timeline file.
//!
//! The recording is read one update at a time and each stall's window written soon after
//! it is met, so that memory holds the windows of the last moments and the tasks' names,
//! whatever the recording's size.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use taskscope_api::recording::{ReadError, Reader};
use taskscope_api::v1;

use crate::cli::ExportArgs;
use crate::source::recording;
use crate::timeline::chrome_json::TraceWriter;
use crate::timeline::{TaskNames, Timeline};

pub(crate) fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    debug_assert!(args.perfetto, "clap requires the format");
    let files = recording::files(&args.recording)?;
    if files.is_empty() {
        anyhow::bail!("{} holds no .tsrec recordings", args.recording.display());
    }
    let out = File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let mut writer = TraceWriter::new(BufWriter::new(out))
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let mut windows = 0;
    for file in &files {
        windows += export_recording(file, &mut writer)?;
    }
    writer
        .finish()
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    if windows == 0 {
        eprintln!(
            "taskscope: warning: {} holds no flight-recorder window (no stall ended, or the \
             app ran with TASKSCOPE_FLIGHT=off); the trace is empty",
            args.recording.display()
        );
    } else {
        eprintln!(
            "taskscope: {windows} stall window(s) written to {}; open it at ui.perfetto.dev",
            args.output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Probe time a window waits, after its stall's end, for stacks symbolized late.
const STACKS_GRACE_NS: u64 = 2_000_000_000;

/// Writes one recording's windows; returns how many. A cut recording gives what it holds.
/// A stall's window is written once the recording has moved on past its end (stacks
/// sampled during a stall can come in an update after the one that ended it).
fn export_recording(
    file: &Path,
    writer: &mut TraceWriter<BufWriter<File>>,
) -> anyhow::Result<usize> {
    let mut names = TaskNames::default();
    let mut seen = HashSet::new();
    let mut waiting: Vec<v1::Stall> = Vec::new();
    let mut pid = 0;
    for item in Reader::open(file)? {
        let update = match item {
            Ok(update) => update,
            Err(ReadError::Truncated { .. }) => break,
            Err(error) => return Err(error).with_context(|| format!("{}", file.display())),
        };
        if let Some(process) = &update.process {
            pid = process.pid;
            writer.process(pid, &process.program)?;
        }
        names.learn(&update);
        for stall in &update.stalls {
            if let Some(w) = waiting.iter_mut().find(|w| w.stall_id == stall.stall_id) {
                w.samples.clone_from(&stall.samples);
            } else if stall.flight.is_some() && seen.insert(stall.stall_id) {
                waiting.push(stall.clone());
            }
        }
        let (due, later) = waiting.into_iter().partition(|w: &v1::Stall| {
            let end = w.poll_started_ns + w.duration_ns;
            update.now_ns >= end.saturating_add(STACKS_GRACE_NS)
        });
        waiting = later;
        write_all(writer, pid, due, &names)?;
    }
    write_all(writer, pid, waiting, &names)?;
    Ok(seen.len())
}

fn write_all(
    writer: &mut TraceWriter<BufWriter<File>>,
    pid: u32,
    stalls: Vec<v1::Stall>,
    names: &TaskNames,
) -> anyhow::Result<()> {
    for stall in stalls {
        if let Some(timeline) = Timeline::of_stall(pid, &stall, names) {
            writer.timeline(&timeline)?;
        }
    }
    Ok(())
}
