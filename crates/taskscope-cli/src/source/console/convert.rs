//! Translating tokio-console's updates (console-api) into taskscope's, so that the model,
//! the judge, the dashboard and `check` work on a console-subscriber target unchanged.
//!
//! What console-api says and taskscope needs differ in three ways, each handled here:
//!
//! * **Stalls are derived, not reported**, from the start and end of each task's latest
//!   poll, at console-subscriber's publish interval (see `polls`).
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
use taskscope_api::v1;

use super::fields::{Meta, TaskFields};
use super::histogram;
use super::polls::{LastPoll, PollWatch, StallRules};

/// What the converter needs to know about its target.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Shown as the process's program (console-api does not say which process it is).
    pub(crate) label: String,
    /// A poll running longer than this is reported as a stall.
    pub(crate) stall_threshold_ns: u64,
}

/// What the converter remembers of one live task.
#[derive(Debug)]
struct Tracked {
    span_id: u64,
    blocking: bool,
    polls: PollWatch,
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
            polls: PollWatch::default(),
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
    stalls: StallRules,
    dropped_events: u64,
    seen_a_task: bool,
    /// Span ids of tasks spawned (resp. ended) since the caller last asked: the tasks whose
    /// details are worth following (resp. no longer).
    spawned_spans: Vec<u64>,
    ended_spans: Vec<u64>,
}

impl Converter {
    pub(crate) fn new(settings: Settings) -> Self {
        let stalls = StallRules::new(settings.stall_threshold_ns);
        Self {
            settings,
            anchor: None,
            metadata: HashMap::new(),
            ids: HashMap::new(),
            tasks: HashMap::new(),
            stalls,
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
        tracked.polls.max_poll_ns = tracked.polls.max_poll_ns.max(polls.max_ns);
        tracked.poll_histogram = polls.buckets;
        let mut stats = tracked.last_stats.clone()?;
        stats.max_poll_ns = stats.max_poll_ns.max(tracked.polls.max_poll_ns);
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
        let fields = TaskFields::of(task, &self.metadata);
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
            && self.tasks.remove(&previous).is_some()
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
        let last = LastPoll { started, ended };
        let state = task_state(&last, woken);
        let dropped_at = stats.dropped_at.as_ref().map(|t| self.probe_ns(Some(t)));
        let now_ns = out.now_ns;
        let tracked = self
            .tasks
            .entry(id)
            .or_insert_with(|| Tracked::new(span_id, false));
        tracked.polls.observe(
            id,
            last,
            tracked.blocking,
            &mut self.stalls,
            &mut out.stalls,
        );
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
            max_poll_ns: tracked.polls.longest_ns(now_ns),
            poll_histogram: tracked.poll_histogram.clone(),
            ..Default::default()
        };
        match dropped_at {
            Some(ended_ns) => self.end(id, ended_ns, taskscope_stats, out),
            None => {
                tracked.last_stats = Some(taskscope_stats.clone());
                out.stats.push(taskscope_stats);
            }
        }
    }

    /// A task console saw dropped: it ends with its last statistics, and its span id may
    /// name another task from now on.
    fn end(&mut self, id: u64, ended_ns: u64, stats: v1::TaskStats, out: &mut v1::Update) {
        out.ended.push(v1::TaskEnded {
            id,
            ended_ns,
            // Not available from console-api: only that the task was dropped.
            outcome: v1::Outcome::Unspecified as i32,
            stats: Some(stats),
            ..Default::default()
        });
        let Some(tracked) = self.tasks.remove(&id) else {
            return;
        };
        let span_id = tracked.span_id;
        if self.ids.get(&span_id) == Some(&id) {
            self.ids.remove(&span_id);
        }
        self.ended_spans.push(span_id);
    }

    /// Polls still running at `now`: reported as stalls once past the threshold, and
    /// refreshed at every update while they last (console sends nothing about a task whose
    /// numbers did not change).
    fn running_stalls(&mut self, now_ns: u64, out: &mut v1::Update) {
        let mut running: Vec<(&u64, &mut Tracked)> = self
            .tasks
            .iter_mut()
            .filter(|(_, t)| t.polls.is_running() && !t.blocking)
            .collect();
        // Sorted: the same console update always gives the same taskscope update.
        running.sort_unstable_by_key(|(id, _)| **id);
        for (&id, tracked) in running {
            tracked
                .polls
                .tick(id, now_ns, &mut self.stalls, &mut out.stalls);
        }
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

/// Running while a poll is; scheduled when woken since its last poll began (it will be
/// polled again); idle otherwise.
fn task_state(last: &LastPoll, woken: Option<u64>) -> v1::TaskState {
    if last.running() {
        v1::TaskState::Running
    } else if woken.is_some_and(|wake| last.started.is_none_or(|start| wake > start)) {
        v1::TaskState::Scheduled
    } else {
        v1::TaskState::Idle
    }
}

#[cfg(test)]
mod tests;
