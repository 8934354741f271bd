//! `taskscope export`: a recording's flight-recorder windows as a timeline file, and the
//! streaming read of those windows that `check --trace-dir` shares.
//!
//! The recording is read one update at a time and each stall's window handed on soon
//! after it is met, so that memory holds the windows of the last moments and the tasks'
//! names, whatever the recording's size.

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
    let cannot_write = || format!("cannot write {}", args.output.display());
    let out = File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let mut writer = TraceWriter::new(BufWriter::new(out)).with_context(cannot_write)?;
    let mut windows = 0;
    for file in &files {
        windows += each_window(file, |process, timeline| {
            writer.process(timeline.pid, &process.program)?;
            writer.timeline(timeline)?;
            Ok(())
        })?;
    }
    writer.finish().with_context(cannot_write)?;
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

/// Hands every stall window of the recording `file` to `visit` as a timeline, with the
/// process it is of; returns how many. A cut recording gives what it holds. A window is
/// handed on once the recording has moved past its stall's end (stacks sampled during a
/// stall can come in an update after the one that ended it).
pub(crate) fn each_window(
    file: &Path,
    mut visit: impl FnMut(&v1::ProcessInfo, &Timeline) -> std::io::Result<()>,
) -> anyhow::Result<usize> {
    let mut names = TaskNames::default();
    let mut seen = HashSet::new();
    let mut waiting: Vec<v1::Stall> = Vec::new();
    let mut process = v1::ProcessInfo::default();
    let mut hand_on = |stalls: Vec<v1::Stall>, process: &v1::ProcessInfo, names: &TaskNames| {
        for stall in stalls {
            if let Some(timeline) = Timeline::of_stall(process.pid, &stall, names) {
                visit(process, &timeline)?;
            }
        }
        std::io::Result::Ok(())
    };
    for item in Reader::open(file)? {
        let update = match item {
            Ok(update) => update,
            Err(ReadError::Truncated { .. }) => break,
            Err(error) => return Err(error).with_context(|| format!("{}", file.display())),
        };
        if let Some(info) = &update.process {
            process.clone_from(info);
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
        hand_on(due, &process, &names)?;
    }
    hand_on(waiting, &process, &names)?;
    Ok(seen.len())
}
