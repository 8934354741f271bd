//! A flight-recorder window (a stall's, or a live probe's last moments) as a timeline:
//! one track per thread with its polls, the stall with its stack, each task's life, and
//! the spawns and wakes that link polls.
//!
//! Pure: it reads a `FlightWindow` and the names of tasks, and knows nothing of any file
//! format; `timeline/chrome_json.rs` writes it for Perfetto, `export.rs` and `check`
//! decide which windows.

pub(crate) mod busy;
pub(crate) mod chrome_json;

use std::collections::HashMap;
use std::rc::Rc;

use taskscope_api::flight::{FlightEvent, events};
use taskscope_api::v1::{self, FlightEventKind as Kind};

/// What a task is called on a timeline: its name, else its spawn site.
#[derive(Debug, Default)]
pub(crate) struct TaskNames {
    /// Shared labels: the short tasks the probe counted by site share their site's.
    names: HashMap<u64, Rc<str>>,
}

impl TaskNames {
    /// Learns the tasks an update announces, one by one or counted by site.
    pub(crate) fn learn(&mut self, update: &v1::Update) {
        for spawned in &update.spawned {
            let label = if spawned.name.is_empty() {
                site_label(spawned.location.as_ref(), spawned.id)
            } else {
                spawned.name.clone()
            };
            self.names.insert(spawned.id, label.into());
        }
        for folded in &update.folded {
            let Some(&first) = folded.ids.first() else {
                continue;
            };
            let label: Rc<str> = site_label(folded.location.as_ref(), first).into();
            for &id in &folded.ids {
                self.names.insert(id, label.clone());
            }
        }
    }

    /// The task's label (`task N` for one never announced).
    pub(crate) fn of(&self, id: u64) -> String {
        self.names
            .get(&id)
            .map_or_else(|| format!("task {id}"), |label| label.to_string())
    }
}

/// An unnamed task's label: its spawn site (`task N` without one).
fn site_label(location: Option<&v1::Location>, id: u64) -> String {
    match location {
        Some(l) => format!("{}:{}", short_file(&l.file), l.line),
        None => format!("task {id}"),
    }
}

/// The last two components of a source path: enough to tell sites apart on a slice.
fn short_file(file: &str) -> &str {
    let mut cut = file.len();
    for _ in 0..2 {
        match file[..cut].rfind('/') {
            Some(i) => cut = i,
            None => return file,
        }
    }
    &file[cut + 1..]
}

/// One thread's track.
#[derive(Debug, PartialEq)]
pub(crate) struct Track {
    pub(crate) thread: u32,
    pub(crate) name: String,
    /// Events the thread's ring lost (the track may miss polls).
    pub(crate) overflowed: u64,
    /// Where the track's events become complete, when later than the timeline's start
    /// (its earlier ones were left out: the track says nothing of before it); 0: complete.
    pub(crate) complete_from_ns: u64,
}

/// A poll, or the stall, on a thread's track: `[start_ns, end_ns)`.
#[derive(Debug, PartialEq)]
pub(crate) struct Slice {
    pub(crate) thread: u32,
    pub(crate) name: String,
    pub(crate) task_id: u64,
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
    pub(crate) what: SliceKind,
}

#[derive(Debug, PartialEq)]
pub(crate) enum SliceKind {
    Poll,
    /// The stall, with its stack (innermost frame first) when one was captured.
    Stall {
        stall_id: u64,
        stack: Vec<String>,
    },
}

/// A task's life within the window (clipped to it).
#[derive(Debug, PartialEq)]
pub(crate) struct Life {
    pub(crate) task_id: u64,
    pub(crate) name: String,
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
}

/// An arrow from a moment on one thread (inside the spawning or waking poll) to the start
/// of the spawned or woken task's next poll.
#[derive(Debug, PartialEq)]
pub(crate) struct Flow {
    pub(crate) what: FlowKind,
    pub(crate) from_thread: u32,
    pub(crate) from_ns: u64,
    pub(crate) to_thread: u32,
    pub(crate) to_ns: u64,
    /// The task the arrow leads to.
    pub(crate) task_id: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FlowKind {
    Spawn,
    Wake,
}

/// Everything one window shows.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Timeline {
    pub(crate) pid: u32,
    pub(crate) from_ns: u64,
    pub(crate) to_ns: u64,
    pub(crate) tracks: Vec<Track>,
    pub(crate) slices: Vec<Slice>,
    pub(crate) lives: Vec<Life>,
    pub(crate) flows: Vec<Flow>,
}

impl Timeline {
    /// The stall the timeline is the window of.
    pub(crate) fn stall_id(&self) -> Option<u64> {
        self.slices.iter().find_map(|s| match s.what {
            SliceKind::Stall { stall_id, .. } => Some(stall_id),
            SliceKind::Poll => None,
        })
    }

    /// The timeline of `stall`'s window (`None` when it has none).
    pub(crate) fn of_stall(pid: u32, stall: &v1::Stall, names: &TaskNames) -> Option<Self> {
        let window = stall.flight.as_ref()?;
        let stall_slice = Slice {
            thread: stall.thread,
            name: format!("STALL {}", names.of(stall.task_id)),
            task_id: stall.task_id,
            start_ns: stall.poll_started_ns,
            end_ns: stall.poll_started_ns + stall.duration_ns,
            what: SliceKind::Stall {
                stall_id: stall.stall_id,
                stack: stack_of(stall),
            },
        };
        Some(Self::with(pid, window, names, Some(stall_slice)))
    }

    /// The timeline of a window that is no stall's: what a live probe's recorder held
    /// when asked (`taskscope export ADDR`).
    pub(crate) fn of_window(pid: u32, window: &v1::FlightWindow, names: &TaskNames) -> Self {
        Self::with(pid, window, names, None)
    }

    fn with(pid: u32, window: &v1::FlightWindow, names: &TaskNames, stall: Option<Slice>) -> Self {
        let mut timeline = Timeline {
            pid,
            from_ns: window.from_ns,
            to_ns: window.to_ns,
            ..Default::default()
        };
        let threads: Vec<(u32, Vec<FlightEvent>)> = window
            .threads
            .iter()
            .map(|t| (t.thread, events(window, t).collect()))
            .collect();
        for thread in &window.threads {
            timeline.tracks.push(Track {
                thread: thread.thread,
                name: thread.name.clone(),
                overflowed: thread.overflowed,
                complete_from_ns: thread.complete_from_ns,
            });
        }
        timeline.slices.extend(stall);
        for (thread, events) in &threads {
            let complete_from_ns = (window.threads.iter())
                .find(|t| t.thread == *thread)
                .map_or(0, |t| t.complete_from_ns);
            timeline.polls(*thread, events, complete_from_ns, names);
        }
        timeline.lives(&threads, names);
        timeline.flows(&threads);
        timeline
    }

    /// A thread's polls, paired start to end (nested polls too); a poll open at either
    /// edge of the window is drawn to that edge, the start being where the thread's
    /// events become complete (`complete_from_ns`) when that is later than the window's.
    fn polls(
        &mut self,
        thread: u32,
        events: &[FlightEvent],
        complete_from_ns: u64,
        names: &TaskNames,
    ) {
        let edge_ns = self.from_ns.max(complete_from_ns);
        let mut open: Vec<(u64, u64)> = Vec::new();
        for event in events {
            match event.kind {
                Kind::FlightEventPollStart => open.push((event.task_id, event.at_ns)),
                Kind::FlightEventPollEnd => {
                    let start_ns = match open.iter().rposition(|(task, _)| *task == event.task_id) {
                        Some(i) => open.drain(i..).next().map_or(edge_ns, |(_, at)| at),
                        None => edge_ns,
                    };
                    self.push_poll(thread, event.task_id, start_ns, event.at_ns, names);
                }
                _ => {}
            }
        }
        for (task, start_ns) in open {
            self.push_poll(thread, task, start_ns, self.to_ns, names);
        }
    }

    fn push_poll(
        &mut self,
        thread: u32,
        task_id: u64,
        start_ns: u64,
        end_ns: u64,
        names: &TaskNames,
    ) {
        self.slices.push(Slice {
            thread,
            name: names.of(task_id),
            task_id,
            start_ns,
            end_ns: end_ns.max(start_ns),
            what: SliceKind::Poll,
        });
    }

    /// Each task seen in the window, from its spawn (or the window's start) to its end (or
    /// the window's end).
    fn lives(&mut self, threads: &[(u32, Vec<FlightEvent>)], names: &TaskNames) {
        let mut spans: HashMap<u64, (u64, u64)> = HashMap::new();
        for event in threads.iter().flat_map(|(_, e)| e) {
            let span = spans
                .entry(event.task_id)
                .or_insert((self.from_ns, self.to_ns));
            match event.kind {
                Kind::FlightEventSpawn => span.0 = event.at_ns,
                Kind::FlightEventEnd => span.1 = event.at_ns,
                _ => {}
            }
        }
        let mut lives: Vec<Life> = spans
            .into_iter()
            .map(|(task_id, (start_ns, end_ns))| Life {
                task_id,
                name: names.of(task_id),
                start_ns,
                end_ns: end_ns.max(start_ns),
            })
            .collect();
        lives.sort_by_key(|l| (l.start_ns, l.task_id));
        self.lives = lives;
    }

    /// A spawn or wake, to the next poll of its task that starts at or after it.
    fn flows(&mut self, threads: &[(u32, Vec<FlightEvent>)]) {
        let mut starts: HashMap<u64, Vec<(u64, u32)>> = HashMap::new();
        for (thread, events) in threads {
            for e in events
                .iter()
                .filter(|e| e.kind == Kind::FlightEventPollStart)
            {
                starts
                    .entry(e.task_id)
                    .or_default()
                    .push((e.at_ns, *thread));
            }
        }
        for polls in starts.values_mut() {
            polls.sort_unstable();
        }
        for (thread, events) in threads {
            for event in events {
                let what = match event.kind {
                    Kind::FlightEventSpawn => FlowKind::Spawn,
                    Kind::FlightEventWake => FlowKind::Wake,
                    _ => continue,
                };
                let Some(polls) = starts.get(&event.task_id) else {
                    continue;
                };
                let next = polls.partition_point(|(at, _)| *at < event.at_ns);
                if let Some(&(to_ns, to_thread)) = polls.get(next) {
                    self.flows.push(Flow {
                        what,
                        from_thread: *thread,
                        from_ns: event.at_ns,
                        to_thread,
                        to_ns,
                        task_id: event.task_id,
                    });
                }
            }
        }
        self.flows.sort_by_key(|f| (f.from_ns, f.task_id));
    }
}

/// The stall's latest stack sample, as `function (location)` lines.
fn stack_of(stall: &v1::Stall) -> Vec<String> {
    let Some(sample) = stall.samples.iter().rev().find(|s| !s.frames.is_empty()) else {
        return Vec::new();
    };
    sample
        .frames
        .iter()
        .map(|f| {
            if f.location.is_empty() {
                f.function.clone()
            } else {
                format!("{} ({})", f.function, f.location)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
