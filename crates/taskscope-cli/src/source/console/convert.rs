//! Translating tokio-console's updates (console-api) into taskscope's, so that the model,
//! the judge, the dashboard and `check` work on a console-subscriber target unchanged.
//!
//! What console-api says and taskscope needs differ in three ways, each handled here:
//!
//! * **Stalls are derived, not reported.** console-subscriber publishes task statistics
//!   every publish interval (1 s by default) and only for tasks whose numbers changed. A
//!   task whose `last_poll_started` is later than its `last_poll_ended` is being polled
//!   now; the converter remembers that poll and, at every update (each carries `now`),
//!   reports it as a stall in progress once it has run past the threshold, then as ended
//!   with its exact duration when the task's next statistics show the poll returned. A
//!   stall that began and ended between two publishes is seen only when it was the task's
//!   latest poll at the next publish.
//! * **Ids.** console-api names a task by its tracing span id, which the registry reuses
//!   once the span has closed. taskscope names it by tokio's task id (the span's `task.id`
//!   field), unique in the process; the span id is only used when that field is missing.
//! * **Time.** console-api sends wall-clock timestamps; taskscope counts nanoseconds from
//!   `ProcessInfo.start_unix_ns`. The anchor is the oldest instant in the first update.
//!
//! Poll histograms come on a stream per task (`WatchTaskDetails`); the caller opens those
//! for the tasks [`Converter::take_followed`] names and hands their messages to
//! [`Converter::details`].
//!
//! Not available from console-api, and left unset rather than invented: outcomes (a task
//! is only known to have been dropped), parents, threads, runtimes and stall stacks.

use std::collections::HashMap;

use console_api as console;
use console_api::field::{Name, Value};
use taskscope_api::v1;

use super::histogram;

/// What the converter needs to know about its target.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Shown as the process's program (console-api does not say which process it is).
    pub(crate) label: String,
    /// A poll running longer than this is reported as a stall.
    pub(crate) stall_threshold_ns: u64,
}

/// A span's callsite, as registered in `new_metadata`: what `Field::name_idx` indexes.
#[derive(Debug, Default)]
struct Meta {
    field_names: Vec<String>,
}

/// What the converter remembers of one live task.
#[derive(Debug)]
struct Tracked {
    span_id: u64,
    blocking: bool,
    ended: bool,
    /// Start (probe ns) of the poll running at the latest word about this task.
    running_since: Option<u64>,
    /// The stall reported for the running poll: (stall id, poll start).
    stall: Option<(u64, u64)>,
    /// Last reported duration of that stall.
    stall_duration_ns: u64,
    /// Start of the last poll already checked for having been a stall once it ended.
    last_checked_poll: u64,
    max_poll_ns: u64,
    /// From the task's details stream, when followed.
    poll_histogram: Vec<u32>,
    /// The statistics last sent, re-sent with a new histogram.
    last_stats: Option<v1::TaskStats>,
}

impl Tracked {
    fn new(span_id: u64, blocking: bool) -> Self {
        Self {
            span_id,
            blocking,
            ended: false,
            running_since: None,
            stall: None,
            stall_duration_ns: 0,
            last_checked_poll: 0,
            max_poll_ns: 0,
            poll_histogram: Vec::new(),
            last_stats: None,
        }
    }
}

/// Folds console-api updates into taskscope updates, one for one.
#[derive(Debug)]
pub(crate) struct Converter {
    settings: Settings,
    /// Unix ns at probe time 0; set by the first update.
    anchor: Option<i128>,
    metadata: HashMap<u64, Meta>,
    /// Span id → taskscope task id, for live spans.
    ids: HashMap<u64, u64>,
    tasks: HashMap<u64, Tracked>,
    next_stall_id: u64,
    dropped_events: u64,
    seen_a_task: bool,
    /// Span ids of tasks spawned (resp. ended) since the caller last asked: the tasks whose
    /// details are worth following (resp. no longer).
    spawned_spans: Vec<u64>,
    ended_spans: Vec<u64>,
}

impl Converter {
    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            settings,
            anchor: None,
            metadata: HashMap::new(),
            ids: HashMap::new(),
            tasks: HashMap::new(),
            next_stall_id: 1,
            dropped_events: 0,
            seen_a_task: false,
            spawned_spans: Vec::new(),
            ended_spans: Vec::new(),
        }
    }

    /// Tasks spawned and ended since the last call, by span id: which details streams to
    /// open and which to close. Blocking tasks are left out (they cannot stall).
    pub(crate) fn take_followed(&mut self) -> (Vec<u64>, Vec<u64>) {
        (
            std::mem::take(&mut self.spawned_spans),
            std::mem::take(&mut self.ended_spans),
        )
    }

    /// A task's details (its poll histogram): its statistics again, with the histogram and
    /// the longest poll it shows. `None` for a task no longer live or not yet described.
    pub(crate) fn details(&mut self, details: &console::tasks::TaskDetails) -> Option<v1::Update> {
        let span_id = details.task_id.as_ref()?.id;
        let id = *self.ids.get(&span_id)?;
        let polls = histogram::polls(details.poll_times_histogram.as_ref()?)?;
        let now_ns = self.probe_ns(details.now.as_ref());
        let tracked = self.tasks.get_mut(&id)?;
        tracked.max_poll_ns = tracked.max_poll_ns.max(polls.max_ns);
        tracked.poll_histogram = polls.buckets;
        let mut stats = tracked.last_stats.clone()?;
        stats.max_poll_ns = stats.max_poll_ns.max(tracked.max_poll_ns);
        stats.poll_histogram = tracked.poll_histogram.clone();
        Some(v1::Update {
            now_ns,
            stats: vec![stats],
            ..Default::default()
        })
    }

    /// Translates one console update. The first one (console-subscriber sends its whole
    /// state first) becomes a snapshot carrying the process information.
    pub(crate) fn convert(&mut self, update: &console::instrument::Update) -> v1::Update {
        let first = self.anchor.is_none();
        if first {
            self.anchor = Some(oldest_instant(update));
        }
        let now_ns = self.probe_ns(update.now.as_ref());
        let mut out = v1::Update {
            now_ns,
            ..Default::default()
        };
        if let Some(metadata) = &update.new_metadata {
            for new in &metadata.metadata {
                if let (Some(id), Some(meta)) = (&new.id, &new.metadata) {
                    self.metadata.insert(
                        id.id,
                        Meta {
                            field_names: meta.field_names.clone(),
                        },
                    );
                }
            }
        }
        let was_seen = self.seen_a_task;
        if let Some(tasks) = &update.task_update {
            for task in &tasks.new_tasks {
                let created = task
                    .id
                    .as_ref()
                    .and_then(|id| tasks.stats_update.get(&id.id))
                    .and_then(|stats| stats.created_at.as_ref());
                let spawned_ns = self.probe_ns(created);
                if let Some(spawned) = self.spawned(task, spawned_ns, &mut out) {
                    out.spawned.push(spawned);
                }
            }
            // Sorted: the same console update always gives the same taskscope update.
            let mut stats: Vec<_> = tasks.stats_update.iter().collect();
            stats.sort_by_key(|(span_id, _)| **span_id);
            for (&span_id, stats) in stats {
                self.stats(span_id, stats, &mut out);
            }
            if tasks.dropped_events > 0 {
                self.dropped_events = self.dropped_events.saturating_add(tasks.dropped_events);
                out.drops = Some(v1::Drops {
                    tasks_lost: self.dropped_events,
                    ..Default::default()
                });
            }
        }
        self.running_stalls(now_ns, &mut out);
        if first {
            out.snapshot = v1::SnapshotMark::SnapshotOnly as i32;
            out.process = Some(self.process_info());
        } else if self.seen_a_task && !was_seen {
            out.instrumentation = v1::Instrumentation::Seen as i32;
        }
        out
    }

    fn process_info(&self) -> v1::ProcessInfo {
        v1::ProcessInfo {
            program: self.settings.label.clone(),
            start_unix_ns: self
                .anchor
                .unwrap_or(0)
                .clamp(i64::MIN.into(), i64::MAX.into()) as i64,
            instrumentation: if self.seen_a_task {
                v1::Instrumentation::Seen
            } else {
                v1::Instrumentation::Waiting
            } as i32,
            stall_threshold_ns: self.settings.stall_threshold_ns,
            publish_interval_ns: CONSOLE_PUBLISH_INTERVAL_NS,
            // console-subscriber always counts waker clones and drops.
            waker_tracking: true,
            stack_capture: Some(v1::StackCapture {
                enabled: false,
                unavailable_reason: "not available from a console-subscriber target".into(),
            }),
            source: v1::SourceKind::Console as i32,
            ..Default::default()
        }
    }

    /// A new task: its taskscope identity, from its fields and location.
    fn spawned(
        &mut self,
        task: &console::tasks::Task,
        spawned_ns: u64,
        out: &mut v1::Update,
    ) -> Option<v1::TaskSpawned> {
        let span_id = task.id.as_ref()?.id;
        let fields = self.fields(task);
        let id = fields.task_id.filter(|&id| id != 0).unwrap_or(span_id);
        let blocking = task.kind == console::tasks::task::Kind::Blocking as i32
            || fields.kind.as_deref() == Some("blocking");
        let kind = match fields.kind.as_deref() {
            _ if blocking => v1::TaskKind::Blocking,
            Some("local") => v1::TaskKind::Local,
            Some("block_on") => v1::TaskKind::BlockOn,
            Some("task") | None => v1::TaskKind::Task,
            Some(_) => v1::TaskKind::Unspecified,
        };
        let location = task
            .location
            .as_ref()
            .and_then(|l| {
                Some(v1::Location {
                    file: l.file.clone()?,
                    line: l.line.unwrap_or(0),
                    column: l.column.unwrap_or(0),
                })
            })
            .or(fields.location);
        // The registry reuses a closed span's id: a task still live under it has ended
        // without its final statistics reaching us.
        if let Some(previous) = self.ids.insert(span_id, id)
            && previous != id
            && let Some(old) = self.tasks.remove(&previous)
            && !old.ended
        {
            out.ended.push(v1::TaskEnded {
                id: previous,
                ended_ns: spawned_ns,
                ..Default::default()
            });
        }
        self.tasks.insert(id, Tracked::new(span_id, blocking));
        if !blocking {
            self.spawned_spans.push(span_id);
        }
        self.seen_a_task = true;
        Some(v1::TaskSpawned {
            id,
            name: fields.name.unwrap_or_default(),
            kind: kind as i32,
            location,
            spawned_ns,
            ..Default::default()
        })
    }

    /// New statistics of a task: its taskscope statistics, its end, and the stall facts
    /// they prove.
    fn stats(&mut self, span_id: u64, stats: &console::tasks::Stats, out: &mut v1::Update) {
        let id = self.ids.get(&span_id).copied().unwrap_or(span_id);
        let poll = stats.poll_stats.unwrap_or_default();
        let started = poll
            .last_poll_started
            .as_ref()
            .map(|t| self.probe_ns(Some(t)));
        let ended = poll
            .last_poll_ended
            .as_ref()
            .map(|t| self.probe_ns(Some(t)));
        let woken = stats.last_wake.as_ref().map(|t| self.probe_ns(Some(t)));
        let running = match (started, ended) {
            (Some(start), Some(end)) => start > end,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let state = if running {
            v1::TaskState::Running
        } else if woken.is_some_and(|wake| started.is_none_or(|start| wake > start)) {
            // Woken since its last poll began: it will be polled again.
            v1::TaskState::Scheduled
        } else {
            v1::TaskState::Idle
        };
        let dropped_at = stats.dropped_at.as_ref().map(|t| self.probe_ns(Some(t)));
        let now_ns = out.now_ns;
        let tracked = self
            .tasks
            .entry(id)
            .or_insert_with(|| Tracked::new(span_id, false));
        // The stall of a poll that has returned (or been followed by another poll).
        if let Some((stall_id, stall_start)) = tracked.stall
            && (!running || started != Some(stall_start))
        {
            let duration_ns = match ended {
                Some(end) if started == Some(stall_start) && end >= stall_start => {
                    end - stall_start
                }
                // A later poll began: this one ended before it, when exactly is unknown.
                _ => tracked.stall_duration_ns,
            };
            tracked.max_poll_ns = tracked.max_poll_ns.max(duration_ns);
            tracked.last_checked_poll = stall_start;
            tracked.stall = None;
            out.stalls.push(v1::Stall {
                stall_id,
                phase: v1::StallPhase::Ended as i32,
                task_id: id,
                poll_started_ns: stall_start,
                duration_ns,
                ..Default::default()
            });
        }
        // The latest poll, over: a stall too short to be seen running.
        if let (Some(start), Some(end), false) = (started, ended, running) {
            let duration_ns = end.saturating_sub(start);
            tracked.max_poll_ns = tracked.max_poll_ns.max(duration_ns);
            if start > tracked.last_checked_poll {
                tracked.last_checked_poll = start;
                if duration_ns >= self.settings.stall_threshold_ns && !tracked.blocking {
                    let stall_id = self.next_stall_id;
                    self.next_stall_id += 1;
                    out.stalls.push(v1::Stall {
                        stall_id,
                        phase: v1::StallPhase::Ended as i32,
                        task_id: id,
                        poll_started_ns: start,
                        duration_ns,
                        ..Default::default()
                    });
                }
            }
        }
        tracked.running_since = if running { started } else { None };
        let wakers = i64::try_from(stats.waker_clones)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(stats.waker_drops).unwrap_or(i64::MAX));
        let taskscope_stats = v1::TaskStats {
            id,
            state: state as i32,
            polls: poll.polls,
            busy_ns: duration_ns(poll.busy_time.as_ref()),
            scheduled_ns: duration_ns(stats.scheduled_time.as_ref()),
            wakes: stats.wakes,
            self_wakes: stats.self_wakes,
            wakers,
            last_poll_start_ns: started.unwrap_or(0),
            last_poll_end_ns: ended.unwrap_or(0),
            max_poll_ns: match (running, started) {
                (true, Some(start)) => tracked.max_poll_ns.max(now_ns.saturating_sub(start)),
                _ => tracked.max_poll_ns,
            },
            poll_histogram: tracked.poll_histogram.clone(),
            ..Default::default()
        };
        match dropped_at {
            Some(ended_ns) if !tracked.ended => {
                tracked.ended = true;
                tracked.running_since = None;
                out.ended.push(v1::TaskEnded {
                    id,
                    ended_ns,
                    // Not available from console-api: only that the task was dropped.
                    outcome: v1::Outcome::Unspecified as i32,
                    stats: Some(taskscope_stats),
                    ..Default::default()
                });
                let span_id = tracked.span_id;
                if self.ids.get(&span_id) == Some(&id) {
                    self.ids.remove(&span_id);
                }
                self.tasks.remove(&id);
                self.ended_spans.push(span_id);
            }
            Some(_) => {}
            None => {
                tracked.last_stats = Some(taskscope_stats.clone());
                out.stats.push(taskscope_stats);
            }
        }
    }

    /// Polls still running at `now`: reported as stalls once past the threshold, and
    /// refreshed at every update while they last (console sends nothing about a task whose
    /// numbers did not change).
    fn running_stalls(&mut self, now_ns: u64, out: &mut v1::Update) {
        let mut ids: Vec<u64> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.running_since.is_some() && !t.blocking && !t.ended)
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            let Some(tracked) = self.tasks.get_mut(&id) else {
                continue;
            };
            let Some(start) = tracked.running_since else {
                continue;
            };
            let duration_ns = now_ns.saturating_sub(start);
            if duration_ns < self.settings.stall_threshold_ns {
                continue;
            }
            let phase = match tracked.stall {
                Some((_, stall_start)) if stall_start == start => v1::StallPhase::Ongoing,
                _ => {
                    tracked.stall = Some((self.next_stall_id, start));
                    self.next_stall_id += 1;
                    v1::StallPhase::Started
                }
            };
            tracked.stall_duration_ns = duration_ns;
            let stall_id = tracked.stall.map_or(0, |(stall_id, _)| stall_id);
            out.stalls.push(v1::Stall {
                stall_id,
                phase: phase as i32,
                task_id: id,
                poll_started_ns: start,
                duration_ns,
                ..Default::default()
            });
        }
    }

    /// The task fields taskscope uses: tokio's `task.id`, `task.name`, `kind` and the
    /// `loc.*` fields (for subscribers that do not fill `Task.location`).
    fn fields(&self, task: &console::tasks::Task) -> TaskFields {
        let mut found = TaskFields::default();
        let (mut file, mut line, mut column) = (None, None, None);
        for field in &task.fields {
            let meta_id = field
                .metadata_id
                .as_ref()
                .or(task.metadata.as_ref())
                .map(|m| m.id);
            let name = match &field.name {
                Some(Name::StrName(name)) => name.as_str(),
                Some(Name::NameIdx(index)) => meta_id
                    .and_then(|m| self.metadata.get(&m))
                    .and_then(|m| m.field_names.get(usize::try_from(*index).ok()?))
                    .map_or("", String::as_str),
                None => "",
            };
            let Some(value) = &field.value else { continue };
            match name {
                "task.id" => found.task_id = as_u64(value),
                "task.name" => found.name = as_text(value).filter(|n| !n.is_empty()),
                "kind" => found.kind = as_text(value),
                "loc.file" => file = as_text(value),
                "loc.line" => line = as_u64(value),
                "loc.col" => column = as_u64(value),
                _ => {}
            }
        }
        found.location = file.map(|file| v1::Location {
            file,
            line: line.and_then(|l| u32::try_from(l).ok()).unwrap_or(0),
            column: column.and_then(|c| u32::try_from(c).ok()).unwrap_or(0),
        });
        found
    }

    /// Probe time of a console timestamp; `None` (and anything before the anchor) is the
    /// anchor itself, 1 ns, because 0 means "never" in taskscope's protocol.
    fn probe_ns(&self, at: Option<&prost_types::Timestamp>) -> u64 {
        let anchor = self.anchor.unwrap_or(0);
        match at {
            Some(at) => u64::try_from((unix_ns(at) - anchor).max(1)).unwrap_or(u64::MAX),
            None => 1,
        }
    }
}

/// console-subscriber's default publish interval, which the stall facts are as fine as.
pub(crate) const CONSOLE_PUBLISH_INTERVAL_NS: u64 = 1_000_000_000;

#[derive(Debug, Default)]
struct TaskFields {
    task_id: Option<u64>,
    name: Option<String>,
    kind: Option<String>,
    location: Option<v1::Location>,
}

fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::U64Val(v) => Some(*v),
        Value::I64Val(v) => u64::try_from(*v).ok(),
        Value::StrVal(s) | Value::DebugVal(s) => s.trim().parse().ok(),
        Value::BoolVal(_) => None,
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::StrVal(s) => Some(s.clone()),
        // `%value` fields arrive as debug values; a `?value` of a string keeps its quotes.
        Value::DebugVal(s) => Some(s.trim_matches('"').to_owned()),
        Value::U64Val(v) => Some(v.to_string()),
        Value::I64Val(v) => Some(v.to_string()),
        Value::BoolVal(v) => Some(v.to_string()),
    }
}

fn unix_ns(at: &prost_types::Timestamp) -> i128 {
    i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos)
}

fn duration_ns(duration: Option<&prost_types::Duration>) -> u64 {
    duration.map_or(0, |d| {
        let ns = i128::from(d.seconds) * 1_000_000_000 + i128::from(d.nanos);
        u64::try_from(ns.max(0)).unwrap_or(u64::MAX)
    })
}

/// The anchor for probe time: the oldest instant the first update mentions (the process
/// has run at least since then), so that every later timestamp is positive.
fn oldest_instant(update: &console::instrument::Update) -> i128 {
    let now = update.now.as_ref().map(unix_ns);
    let created = update
        .task_update
        .iter()
        .flat_map(|t| t.stats_update.values())
        .filter_map(|s| s.created_at.as_ref().map(unix_ns));
    now.into_iter()
        .chain(created)
        .min()
        .map_or(0, |oldest| oldest - 1)
}

#[cfg(test)]
mod tests;
