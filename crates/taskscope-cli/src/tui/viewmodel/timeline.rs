//! The Timeline view's picture: per thread, columns over the last seconds shaded by how
//! busy the thread was, the columns where a stall of it was going on, the busiest task
//! under the cursor, and what the set-up cannot show. Computed from the model's activity
//! buckets (`model/activity.rs`) alone.

use crate::model::stall::Stall;
use crate::model::task::Kind;
use crate::model::{Instrumentation, Model};

/// The spans the view can show, narrowest first (`+` and `-` move along them).
pub(crate) const ZOOMS_S: [u64; 5] = [2, 5, 10, 20, 30];
/// The span shown at first: 10 s.
pub(crate) const DEFAULT_ZOOM: usize = 2;

/// Where the user is looking: the zoom and the cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    /// Index into [`ZOOMS_S`].
    pub(crate) zoom: usize,
    /// The cursor's distance from the rightmost column, in columns: it stays as far back
    /// from now as time moves on.
    pub(crate) back: usize,
}

impl Default for Position {
    fn default() -> Self {
        Self {
            zoom: DEFAULT_ZOOM,
            back: 0,
        }
    }
}

impl Position {
    /// `+`: a narrower span; `-`: a wider one.
    pub(crate) fn zoom(&mut self, narrower: bool) {
        self.zoom = if narrower {
            self.zoom.saturating_sub(1)
        } else {
            (self.zoom + 1).min(ZOOMS_S.len() - 1)
        };
    }

    /// `←` (positive: back in time) and `→`; the view clamps it to its columns.
    pub(crate) fn move_cursor(&mut self, columns_back: i64) {
        let back = self.back as i64 + columns_back;
        self.back = back.clamp(0, 4_096) as usize;
    }
}

/// What one column of one thread was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cell {
    /// Polled for this share of the column, in quarters rounded up: 0 is idle, 1 up to a
    /// quarter, 4 over three quarters.
    Busy(u8),
    /// A stall of this thread was going on.
    Stalled,
}

/// One thread's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) thread: u32,
    pub(crate) name: String,
    /// It ran `spawn_blocking` closures: a blocking-pool thread, listed after the workers.
    pub(crate) blocking: bool,
    pub(crate) cells: Vec<Cell>,
    /// Under the cursor: the task that took most of the column, and the thread's busy
    /// share of the column in percent; `None` for the share when a stall was going on
    /// (the task is then the stalled one).
    pub(crate) at_cursor: Option<(String, Option<u32>)>,
}

/// The whole picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Timeline {
    /// The probe time of the model's latest update: what "before now" counts from.
    pub(crate) now_ns: u64,
    /// Probe time the first column starts at: before 0 when the process is younger than
    /// the span (the picture keeps its scale, with now at the right).
    pub(crate) from_ns: i64,
    pub(crate) column_ns: u64,
    pub(crate) columns: usize,
    /// The cursor's column.
    pub(crate) cursor: usize,
    pub(crate) rows: Vec<Row>,
    /// What the set-up cannot show, one line each.
    pub(crate) blind: Vec<String>,
}

impl Timeline {
    /// The picture of the `span_s` seconds up to the model's latest update, in `columns`
    /// columns (fewer when the span has fewer buckets), the cursor `back` columns from the
    /// right, over `stalls` (the ones the dashboard counts).
    pub(crate) fn compute<'a>(
        model: &Model,
        stalls: impl Iterator<Item = &'a Stall>,
        span_s: u64,
        columns: usize,
        back: usize,
    ) -> Self {
        let bucket_ns = model.activity().bucket_ns().unwrap_or(20_000_000);
        let span_ns = span_s * 1_000_000_000;
        // Whole buckets per column, so that no bucket is split between two.
        let column_ns = span_ns.div_ceil(columns.max(1) as u64).div_ceil(bucket_ns) * bucket_ns;
        let columns = span_ns.div_ceil(column_ns) as usize;
        // Columns keep their place as time moves: the last one holds now.
        let to_ns = (model.now_ns() / column_ns + 1) * column_ns;
        let mut timeline = Self {
            now_ns: model.now_ns(),
            from_ns: to_ns as i64 - (columns as u64 * column_ns) as i64,
            column_ns,
            columns,
            cursor: columns - 1 - back.min(columns - 1),
            rows: Vec::new(),
            blind: blind(model),
        };
        let stalls: Vec<&Stall> = stalls.collect();
        let runtime = model.runtime();
        let mut numbers: Vec<u32> = (runtime.threads())
            .filter(|(_, t)| !t.exited)
            .map(|(n, _)| n)
            .chain(model.activity().threads())
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        timeline.rows = (numbers.into_iter())
            .map(|thread| timeline.row(model, thread, bucket_ns, &stalls))
            .collect();
        timeline.rows.sort_by_key(|row| (row.blocking, row.thread));
        timeline
    }

    /// One thread's row.
    fn row(&self, model: &Model, thread: u32, bucket_ns: u64, stalls: &[&Stall]) -> Row {
        let to_ns = (self.from_ns + (self.columns as u64 * self.column_ns) as i64) as u64;
        let from_ns = self.from_ns.max(0) as u64;
        let mut busy = vec![0u64; self.columns];
        let mut blocking = false;
        // The cursor column's time per busiest task of a bucket.
        let mut by_task: Vec<(u64, u64)> = Vec::new();
        for bucket in model.activity().buckets(thread, from_ns, to_ns) {
            let column = ((bucket.start_ns as i64 - self.from_ns) as u64 / self.column_ns) as usize;
            busy[column] += bucket.busy_ns;
            let task = model.task(bucket.top_task);
            blocking |= task.is_some_and(|t| t.kind == Kind::Blocking);
            if column == self.cursor && bucket.top_task != 0 {
                match by_task.iter_mut().find(|(t, _)| *t == bucket.top_task) {
                    Some((_, ns)) => *ns += bucket.busy_ns,
                    None => by_task.push((bucket.top_task, bucket.busy_ns)),
                }
            }
        }
        let known_ns = model.now_ns() / bucket_ns * bucket_ns;
        let mut row = Row {
            thread,
            name: model.runtime().thread_name(thread),
            blocking,
            cells: Vec::with_capacity(self.columns),
            at_cursor: None,
        };
        for (column, &busy_ns) in busy.iter().enumerate() {
            let start = (self.from_ns + (column as u64 * self.column_ns) as i64).max(0) as u64;
            let end = start + self.column_ns;
            let stalled = stalls.iter().find(|s| {
                s.thread == thread
                    && s.poll_started_ns < end
                    && s.poll_started_ns + s.duration_at(model.now_ns()) > start
            });
            let capacity = capacity(start, end.min(known_ns), bucket_ns);
            let percent = (busy_ns * 100).checked_div(capacity).unwrap_or(0).min(100);
            row.cells.push(match stalled {
                Some(_) => Cell::Stalled,
                None => Cell::Busy((busy_ns * 4).checked_div(capacity).map_or(0, |q| {
                    (q + u64::from((busy_ns * 4) % capacity > 0)).min(4) as u8
                })),
            });
            if column != self.cursor {
                continue;
            }
            row.at_cursor = match stalled {
                Some(stall) => Some((task_label(model, stall.task_id), None)),
                None => (by_task.iter())
                    .max_by_key(|&&(t, ns)| (ns, std::cmp::Reverse(t)))
                    .map(|&(task, _)| (task_label(model, task), Some(percent as u32))),
            };
        }
        row
    }

    /// The probe time the cursor's column starts at.
    pub(crate) fn cursor_ns(&self) -> i64 {
        self.from_ns + (self.cursor as u64 * self.column_ns) as i64
    }
}

/// The bucket time inside `start..end`: the buckets (on the grid of `bucket_ns`) that
/// start in it, whole.
fn capacity(start: u64, end: u64, bucket_ns: u64) -> u64 {
    if end <= start {
        return 0;
    }
    (end.div_ceil(bucket_ns) - start.div_ceil(bucket_ns)) * bucket_ns
}

/// A task as the task table shows it: its name, else where it was spawned.
fn task_label(model: &Model, id: u64) -> String {
    match model.task(id) {
        Some(task) if task.name.as_deref().is_some_and(|n| !n.is_empty()) => {
            task.name.as_deref().unwrap_or_default().to_owned()
        }
        Some(task) => model.location(task.location).to_owned(),
        None => format!("task {id}"),
    }
}

/// What this set-up cannot show in the timeline, one line each; empty when it shows all.
pub(crate) fn blind(model: &Model) -> Vec<String> {
    let mut lines = Vec::new();
    let Some(process) = model.process() else {
        lines.push("waiting for the probe's first update".to_owned());
        return lines;
    };
    if model.is_console_target() {
        lines.push(
            "a console-subscriber target says nothing of threads: no timeline (run the app \
             with taskscope's probe)"
                .to_owned(),
        );
        return lines;
    }
    if model.instrumentation() == Instrumentation::Missing {
        lines.push(
            "built without --cfg tokio_unstable: no poll is seen, so no thread's activity \
             (RUSTFLAGS=\"--cfg tokio_unstable\")"
                .to_owned(),
        );
    }
    if process.activity_bucket_ns == 0 {
        lines.push(
            "no activity from the probe: flight recorder off (TASKSCOPE_FLIGHT=off) or an \
             older probe"
                .to_owned(),
        );
    }
    let drops = model.drops();
    if drops.flight_threads_unrecorded > 0 {
        lines.push(format!(
            "{} threads unrecorded: every flight-recorder ring was taken (raise TASKSCOPE_FLIGHT)",
            drops.flight_threads_unrecorded
        ));
    }
    if drops.flight_events_overflowed > 0 {
        lines.push(format!(
            "{} events lost to full rings: some polls are missing (raise TASKSCOPE_FLIGHT)",
            drops.flight_events_overflowed
        ));
    }
    lines
}
