//! Recordings of example programs, read back and folded into what they say happened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use taskscope_api::v1;

use crate::app::command;
use crate::source::Location;

/// Runs an example to completion with a recording; returns its output and the folded
/// recording.
pub fn run_recorded(name: &str, envs: &[(&str, &str)]) -> (Output, Folded) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = command(name);
    command.env("TASKSCOPE_RECORD", dir.path());
    for (key, value) in envs {
        command.env(key, value);
    }
    let output = command.output().expect("example runs");
    let recording = single_recording(dir.path());
    (output, Folded::read(&recording))
}

/// The one recording in `dir`.
pub fn single_recording(dir: &Path) -> PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tsrec"))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "expected one recording in {dir:?}: {files:?}"
    );
    files.into_iter().next().unwrap()
}

/// One task as the stream described it.
#[derive(Debug, Default, Clone)]
pub struct Task {
    /// How it was announced.
    pub spawned: v1::TaskSpawned,
    /// Its latest statistics, if any came.
    pub stats: Option<v1::TaskStats>,
    /// How it ended, if it did.
    pub ended: Option<v1::TaskEnded>,
}

impl Task {
    /// Its outcome, once it ended.
    pub fn outcome(&self) -> Option<v1::Outcome> {
        self.ended
            .as_ref()
            .map(|e| v1::Outcome::try_from(e.outcome).unwrap())
    }

    /// Its spawn location.
    pub fn location(&self) -> Location {
        let l = self.spawned.location.clone().unwrap_or_default();
        Location {
            file: l.file,
            line: l.line,
            column: l.column,
        }
    }
}

/// A recording or stream folded into its final state.
#[derive(Debug, Default)]
pub struct Folded {
    /// How many updates were folded.
    pub updates: usize,
    /// The process, as last described.
    pub process: Option<v1::ProcessInfo>,
    /// Every task, by id.
    pub tasks: BTreeMap<u64, Task>,
    /// Every stall, by stall id, in its latest phase.
    pub stalls: BTreeMap<u64, v1::Stall>,
    /// The runtime's threads, by thread number, as last described.
    pub threads: BTreeMap<u32, v1::ThreadState>,
    /// Whether the process said it exited.
    pub exited: bool,
    /// Whether the recording was cut short (a killed process).
    pub truncated: bool,
    /// Short-lived tasks counted by spawn site (`file:line:col`), each site's latest tally.
    pub folded: BTreeMap<String, v1::FoldedTasks>,
    /// Every id the folded tallies named, with how many times it was named.
    pub folded_ids: BTreeMap<u64, u32>,
    /// Every thread's activity summaries, in the order they came.
    pub activity: Vec<v1::ThreadActivity>,
}

impl Folded {
    /// Reads and folds the recording at `path`.
    pub fn read(path: &Path) -> Self {
        let recording = taskscope_api::recording::read_all(path).expect("recording reads");
        let mut folded = Folded {
            truncated: recording.truncated_at.is_some(),
            ..Default::default()
        };
        for update in recording.updates {
            folded.apply(update);
        }
        folded
    }

    /// Folds one more update in.
    pub fn apply(&mut self, update: v1::Update) {
        self.updates += 1;
        if update.process.is_some() {
            self.process = update.process;
        }
        for spawned in update.spawned {
            let id = spawned.id;
            self.tasks.entry(id).or_default().spawned = spawned;
        }
        for stats in update.stats {
            let id = stats.id;
            self.tasks.entry(id).or_default().stats = Some(stats);
        }
        for ended in update.ended {
            let id = ended.id;
            self.tasks.entry(id).or_default().ended = Some(ended);
        }
        for stall in update.stalls {
            self.stalls.insert(stall.stall_id, stall);
        }
        for folded in update.folded {
            let l = folded.location.clone().unwrap_or_default();
            for &id in &folded.ids {
                *self.folded_ids.entry(id).or_default() += 1;
            }
            // Each is the site's whole tally so far: it replaces.
            self.folded
                .insert(format!("{}:{}:{}", l.file, l.line, l.column), folded);
        }
        if let Some(runtime) = update.runtime {
            for thread in runtime.threads {
                self.threads.insert(thread.thread, thread);
            }
        }
        self.activity.extend(update.activity);
        self.exited |= update.process_exited;
    }

    /// Tasks spawned with `tokio::spawn` & co (not the runtime's `block_on`).
    pub fn spawned_tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks
            .values()
            .filter(|t| t.spawned.kind == v1::TaskKind::Task as i32)
    }

    /// The task spawned at `location`; panics when there is none.
    pub fn task_at(&self, location: &Location) -> &Task {
        self.tasks
            .values()
            .find(|t| &t.location() == location)
            .unwrap_or_else(|| panic!("no task spawned at {location}: {:#?}", self.tasks))
    }
}
