//! `taskscope export`: a recording's flight-recorder windows as a timeline file, and the
//! streaming read of those windows that `check --trace-dir` shares.
//!
//! The recording is read one update at a time and each stall's window handed on soon
//! after it is met, so that memory holds the windows of the last moments and the tasks'
//! names, whatever the recording's size.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use taskscope_api::recording::{ReadError, Reader};
use taskscope_api::v1;

use crate::cli::ExportArgs;
use crate::source::grpc::{self, LiveFlight};
use crate::source::{Address, Target, recording};
use crate::timeline::busy::{BUCKET_NS, BusyCounters, BusyPoint, activity_of};
use crate::timeline::chrome_json::TraceWriter;
use crate::timeline::{TaskNames, Timeline};

pub(crate) async fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    debug_assert!(args.perfetto, "clap requires the format");
    match Target::parse(&args.source)? {
        Target::Recording(path) => {
            if args.span.is_some() {
                anyhow::bail!(
                    "--span applies to a live probe; a recording's windows are the spans its \
                     stalls were recorded with"
                );
            }
            from_recording(args, &path)
        }
        Target::Live(address) => live(args, &address).await,
    }
}

/// A trace writer on `args.output`.
fn create(args: &ExportArgs) -> anyhow::Result<TraceWriter<BufWriter<File>>> {
    let out = File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    TraceWriter::new(BufWriter::new(out))
        .with_context(|| format!("cannot write {}", args.output.display()))
}

/// What a live probe's flight recorder holds of the last moments, as one timeline.
async fn live(args: &ExportArgs, address: &Address) -> anyhow::Result<ExitCode> {
    let span_ns = args.span.map_or(0, |span| span.as_nanos() as u64);
    let LiveFlight { window, state } = grpc::flight(address, args.connect_timeout, span_ns).await?;
    let mut names = TaskNames::default();
    let mut process = v1::ProcessInfo::default();
    for update in &state {
        names.learn(update);
        if let Some(info) = &update.process {
            process.clone_from(info);
        }
    }
    let timeline = Timeline::of_window(process.pid, &window, &names);
    let mut writer = create(args)?;
    let cannot_write = || format!("cannot write {}", args.output.display());
    writer
        .process(timeline.pid, &process.program)
        .and_then(|()| writer.timeline(&timeline))
        .and_then(|()| busy_of_window(&timeline, process.activity_bucket_ns, &mut writer))
        .with_context(cannot_write)?;
    writer.finish().with_context(cannot_write)?;
    eprintln!("{}", live_summary(&timeline, &window, &args.output));
    Ok(ExitCode::SUCCESS)
}

/// What `export` of a live probe wrote, or why the trace is empty, in a sentence.
fn live_summary(timeline: &Timeline, window: &v1::FlightWindow, output: &Path) -> String {
    let seconds = window.to_ns.saturating_sub(window.from_ns) as f64 / 1e9;
    if timeline.tracks.is_empty() {
        return format!(
            "taskscope: warning: no thread recorded anything in the last {seconds:.1} s (an \
             idle app, or one built without --cfg tokio_unstable, whose polls the recorder \
             cannot see); {} holds an empty trace",
            output.display()
        );
    }
    let left_out = match window.events_left_out {
        0 => String::new(),
        n => format!(
            " ({n} older events left out to stay within the window's share of \
             TASKSCOPE_FLIGHT)"
        ),
    };
    format!(
        "taskscope: the last {seconds:.1} s of {} thread(s), {} poll(s){left_out}, written \
         to {}; open it at ui.perfetto.dev",
        timeline.tracks.len(),
        timeline.slices.len(),
        output.display()
    )
}

/// Every stall window of the recordings at `path`.
fn from_recording(args: &ExportArgs, path: &Path) -> anyhow::Result<ExitCode> {
    let files = recording::files(path)?;
    if files.is_empty() {
        anyhow::bail!("{} holds no .tsrec recordings", path.display());
    }
    let cannot_write = || format!("cannot write {}", args.output.display());
    let mut writer = create(args)?;
    let mut windows = 0;
    let mut points = 0;
    for file in &files {
        windows += each_window(file, |process, timeline| {
            writer.process(timeline.pid, &process.program)?;
            writer.timeline(timeline)?;
            Ok(())
        })?;
        points += busy_of_recording(file, &mut writer)?;
    }
    writer.finish().with_context(cannot_write)?;
    if windows == 0 && points == 0 {
        eprintln!(
            "taskscope: warning: {} holds no flight-recorder window and no thread's activity \
             (no stall ended, or the app ran with TASKSCOPE_FLIGHT=off); the trace is empty",
            path.display()
        );
    } else {
        eprintln!(
            "taskscope: {windows} stall window(s) and every thread's busy share over the \
             recording ({points} counter points) written to {}; open it at ui.perfetto.dev",
            args.output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The updates of the recording `file`, streamed; a cut recording ends where it was cut
/// (its windows and counters are what it holds).
fn updates(file: &Path) -> anyhow::Result<impl Iterator<Item = anyhow::Result<v1::Update>>> {
    let named = |error: ReadError| anyhow::Error::new(error).context(file.display().to_string());
    Ok(Reader::open(file)?
        .take_while(|item| !matches!(item, Err(ReadError::Truncated { .. })))
        .map(move |item| item.map_err(named)))
}

/// Each thread's busy-share counter over the recording `file`, streamed; returns how many
/// points it wrote.
fn busy_of_recording<W: std::io::Write>(
    file: &Path,
    writer: &mut TraceWriter<W>,
) -> anyhow::Result<u64> {
    let mut busy = Busy::default();
    for update in updates(file)? {
        let update = update?;
        busy.write(writer, &update)?;
    }
    busy.finish(writer)?;
    Ok(busy.points)
}

/// Each thread's busy-share counter over a live probe's window, from its polls, in the
/// probe's buckets (`bucket_ns`, [`BUCKET_NS`] from a probe that does not say).
fn busy_of_window<W: std::io::Write>(
    timeline: &Timeline,
    bucket_ns: u64,
    writer: &mut TraceWriter<W>,
) -> std::io::Result<()> {
    let mut busy = Busy {
        pid: timeline.pid,
        threads: (timeline.tracks.iter())
            .map(|t| (t.thread, t.name.clone()))
            .collect(),
        ..Busy::default()
    };
    let update = v1::Update {
        activity: activity_of(timeline, if bucket_ns == 0 { BUCKET_NS } else { bucket_ns }),
        ..Default::default()
    };
    busy.write(writer, &update)?;
    busy.finish(writer)
}

/// The busy-share counters of one process's updates: its pid and thread names as the
/// updates tell them, and the counters' state (`timeline/busy.rs`).
#[derive(Default)]
struct Busy {
    pid: u32,
    threads: HashMap<u32, String>,
    counters: BusyCounters,
    points: u64,
}

impl Busy {
    /// Writes the points `update`'s activity adds.
    fn write<W: std::io::Write>(
        &mut self,
        writer: &mut TraceWriter<W>,
        update: &v1::Update,
    ) -> std::io::Result<()> {
        if let Some(process) = &update.process {
            self.pid = process.pid;
        }
        for thread in update.runtime.iter().flat_map(|r| &r.threads) {
            self.threads.insert(thread.thread, thread.name.clone());
        }
        for activity in &update.activity {
            for point in self.counters.points(activity) {
                self.point(writer, point)?;
            }
        }
        Ok(())
    }

    /// Drops every counter still above 0 to 0 at its end.
    fn finish<W: std::io::Write>(&mut self, writer: &mut TraceWriter<W>) -> std::io::Result<()> {
        for point in self.counters.finish() {
            self.point(writer, point)?;
        }
        Ok(())
    }

    fn point<W: std::io::Write>(
        &mut self,
        writer: &mut TraceWriter<W>,
        point: BusyPoint,
    ) -> std::io::Result<()> {
        let name = self
            .threads
            .get(&point.thread)
            .map_or("thread", String::as_str);
        writer.busy(self.pid, name, point)?;
        self.points += 1;
        Ok(())
    }
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
    for update in updates(file)? {
        let update = update?;
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
