//! Timelines in Chrome's JSON trace-event format, which Perfetto (ui.perfetto.dev) and
//! `chrome://tracing` open: a thread track per probe thread (`pid` the app's, `tid` the
//! probe's thread number), complete slices (`X`) for polls and stalls, async slices
//! (`b`/`e`) for task lives, flow events (`s`/`f`) for spawns and wakes, and a counter
//! (`C`) per thread for its busy share over time.
//!
//! Written as it goes, one event at a time, so that exporting a large recording never
//! holds more than one window: JSON rather than Perfetto's protobuf format because any
//! language reads it back without a schema (the tests read it with Python's `json`).

use std::collections::HashSet;
use std::io::{self, Write};

use serde_json::{Value, json};

use crate::timeline::busy::BusyPoint;
use crate::timeline::{FlowKind, SliceKind, Timeline};

/// A trace being written to `out`.
pub(crate) struct TraceWriter<W: Write> {
    out: W,
    /// Events written so far (a comma goes before every one but the first).
    written: u64,
    /// Tracks and processes already named.
    named: HashSet<(u32, u32)>,
    /// The next flow's id: unique within the trace.
    next_flow: u64,
}

impl<W: Write> TraceWriter<W> {
    /// Starts the trace document.
    pub(crate) fn new(mut out: W) -> io::Result<Self> {
        out.write_all(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")?;
        Ok(Self {
            out,
            written: 0,
            named: HashSet::new(),
            next_flow: 1,
        })
    }

    fn event(&mut self, event: &Value) -> io::Result<()> {
        if self.written > 0 {
            self.out.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut self.out, event)?;
        self.written += 1;
        Ok(())
    }

    /// Names the app's process once (`program`, as its `ProcessInfo` says).
    pub(crate) fn process(&mut self, pid: u32, program: &str) -> io::Result<()> {
        if self.named.insert((pid, 0)) {
            self.event(&json!({
                "name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                "args": { "name": format!("{program} ({pid})") },
            }))?;
        }
        Ok(())
    }

    /// Writes one timeline's tracks, slices, lives and flows.
    pub(crate) fn timeline(&mut self, timeline: &Timeline) -> io::Result<()> {
        let pid = timeline.pid;
        for track in &timeline.tracks {
            if !self.named.insert((pid, track.thread)) {
                continue;
            }
            self.event(&json!({
                "name": "thread_name", "ph": "M", "pid": pid, "tid": track.thread,
                "args": { "name": format!("{} #{}", track.name, track.thread) },
            }))?;
            self.event(&json!({
                "name": "thread_sort_index", "ph": "M", "pid": pid, "tid": track.thread,
                "args": { "sort_index": track.thread },
            }))?;
        }
        for track in timeline.tracks.iter().filter(|t| t.overflowed > 0) {
            self.event(&json!({
                "name": format!("{} events lost (ring full)", track.overflowed),
                "cat": "overflow", "ph": "i", "s": "t", "pid": pid, "tid": track.thread,
                "ts": micros(timeline.from_ns),
            }))?;
        }
        for track in (timeline.tracks.iter()).filter(|t| t.complete_from_ns > timeline.from_ns) {
            self.event(&json!({
                "name": "earlier events left out (window budget or recorder history)",
                "cat": "left_out", "ph": "i", "s": "t", "pid": pid, "tid": track.thread,
                "ts": micros(track.complete_from_ns),
            }))?;
        }
        for slice in &timeline.slices {
            let (cat, args) = match &slice.what {
                SliceKind::Poll => ("poll", json!({ "task_id": slice.task_id })),
                SliceKind::Stall { stall_id, stack } => (
                    "stall",
                    json!({
                        "task_id": slice.task_id,
                        "stall_id": stall_id,
                        "stack": stack.join("\n"),
                    }),
                ),
            };
            self.event(&json!({
                "name": slice.name, "cat": cat, "ph": "X", "pid": pid, "tid": slice.thread,
                "ts": micros(slice.start_ns), "dur": micros(slice.end_ns - slice.start_ns),
                "args": args,
            }))?;
        }
        for life in &timeline.lives {
            let id = format!("0x{:x}", life.task_id);
            self.event(&json!({
                "name": life.name, "cat": "task", "ph": "b", "pid": pid, "id": id,
                "ts": micros(life.start_ns), "args": { "task_id": life.task_id },
            }))?;
            self.event(&json!({
                "name": life.name, "cat": "task", "ph": "e", "pid": pid, "id": id,
                "ts": micros(life.end_ns),
            }))?;
        }
        for flow in &timeline.flows {
            let id = self.next_flow;
            self.next_flow += 1;
            let name = match flow.what {
                FlowKind::Spawn => "spawn",
                FlowKind::Wake => "wake",
            };
            self.event(&json!({
                "name": name, "cat": "flow", "ph": "s", "id": id, "pid": pid,
                "tid": flow.from_thread, "ts": micros(flow.from_ns),
                "args": { "task_id": flow.task_id },
            }))?;
            self.event(&json!({
                "name": name, "cat": "flow", "ph": "f", "bp": "e", "id": id, "pid": pid,
                "tid": flow.to_thread, "ts": micros(flow.to_ns),
            }))?;
        }
        Ok(())
    }

    /// One point of the busy-share counter of thread `point.thread`, called `name`, in
    /// process `pid`.
    pub(crate) fn busy(&mut self, pid: u32, name: &str, point: BusyPoint) -> io::Result<()> {
        self.event(&json!({
            "name": format!("busy % {name} #{}", point.thread), "cat": "busy", "ph": "C",
            "pid": pid, "ts": micros(point.at_ns), "args": { "busy %": point.percent },
        }))
    }

    /// Ends the document; returns the sink.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Trace-event times are microseconds; fractions keep the probe's nanoseconds.
fn micros(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}
