//! The Resources view's rows: every lock, semaphore and joined task of the wait-for graph,
//! who holds it and for how long, who waits on it, and whether it is in a cycle of waits,
//! trouble first. From the model alone: the graph the probe sent last and the cycles the
//! model keeps (the same cycles `check` judges, [`crate::model::wait_graph`]), so a
//! deadlock whose tasks the runtime's shutdown cancelled stays listed as it stood.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use crate::model::Model;
use crate::model::judge::policy::Policy;
use crate::model::wait_graph::{Resource, WaitsOn};

/// What a row stands for: a resource by its probe id, or a task whose `JoinHandle` others
/// await (through `taskscope::join`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Resource(u64),
    Join(u64),
}

/// Whether a row is in a cycle of waits, and for how long the cycle has stood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InCycle {
    No,
    /// Standing, shorter than the deadlock threshold so far.
    Forming {
        stood_ns: u64,
    },
    /// Stood past the threshold: `check` reports it as a deadlock.
    Deadlock {
        stood_ns: u64,
    },
}

/// A task holding a resource (for a join: the task whose end is awaited).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    /// 0: code outside any task.
    pub(crate) task: u64,
    /// The task's name, or where it was spawned.
    pub(crate) what: String,
    /// How long it has held it (none for a join).
    pub(crate) held_ns: Option<u64>,
    /// Guards or permits held (1 for most).
    pub(crate) count: u32,
}

/// One row of the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) key: Key,
    /// `Mutex`, `RwLock`, `Semaphore`, or `join`.
    pub(crate) kind: String,
    /// Where it was created (`file:line:col`); for a join, where the joined task was
    /// spawned. Empty when unknown.
    pub(crate) location: String,
    /// Longest held first.
    pub(crate) holders: Vec<Holder>,
    /// Holders were guessed (a semaphore handed a permit on without saying to whom).
    pub(crate) guessed: bool,
    /// Waiting tasks, longest wait first.
    pub(crate) waiters: Vec<u64>,
    /// The longest wait on it so far, when known.
    pub(crate) longest_wait_ns: Option<u64>,
    pub(crate) cycle: InCycle,
}

impl Row {
    /// The task Enter opens: the longest holder (for a join, the joined task).
    pub(crate) fn holder_task(&self) -> Option<u64> {
        self.holders.iter().map(|h| h.task).find(|&t| t != 0)
    }

    fn held_ns(&self) -> u64 {
        self.holders
            .iter()
            .filter_map(|h| h.held_ns)
            .max()
            .unwrap_or(0)
    }
}

/// Every resource and joined task of the graph at probe time `now_ns`, trouble first: the
/// rows of deadlocks (longest standing first), then of cycles still forming, then those
/// with waiters (held longest first), then the rest (held longest first).
pub(crate) fn rows(model: &Model, policy: &Policy, now_ns: u64) -> Vec<Row> {
    let graph = model.wait_graph();
    let mut rows: BTreeMap<Key, Row> = BTreeMap::new();
    for resource in graph.resources() {
        rows.insert(
            Key::Resource(resource.id),
            resource_row(model, resource, now_ns),
        );
    }
    for (task, wait) in graph.waits() {
        let key = match wait.on {
            WaitsOn::Resource(id) => Key::Resource(id),
            WaitsOn::Join(other) => Key::Join(other),
        };
        let row = rows.entry(key).or_insert_with(|| match key {
            Key::Join(other) => join_row(model, other),
            Key::Resource(id) => unknown_resource(id),
        });
        row.waiters.push(task);
        let waited = now_ns.saturating_sub(wait.since_ns);
        row.longest_wait_ns = Some(row.longest_wait_ns.map_or(waited, |w| w.max(waited)));
    }
    // Longest wait first: the waits are keyed by task, so sort by each one's start.
    for row in rows.values_mut() {
        row.waiters.sort_by_key(|&task| {
            let since = graph.wait_of(task).map_or(u64::MAX, |w| w.since_ns);
            (since, task)
        });
    }
    mark_cycles(model, policy, &mut rows);
    let mut rows: Vec<Row> = rows.into_values().collect();
    rows.sort_by_key(|row| {
        let (rank, stood) = match row.cycle {
            InCycle::Deadlock { stood_ns } => (0, stood_ns),
            InCycle::Forming { stood_ns } => (1, stood_ns),
            InCycle::No if !row.waiters.is_empty() => (2, row.held_ns()),
            InCycle::No => (3, row.held_ns()),
        };
        (rank, Reverse(stood), row.key)
    });
    rows
}

/// Marks the rows of every cycle the model keeps; a cycle no longer in the graph (its
/// tasks cancelled by the runtime's shutdown) brings its rows back as they were last seen.
fn mark_cycles(model: &Model, policy: &Policy, rows: &mut BTreeMap<Key, Row>) {
    for cycle in model.wait_graph().cycles() {
        let stood_ns = cycle.stood_ns();
        let mark = if stood_ns >= policy.deadlock_after_ns {
            InCycle::Deadlock { stood_ns }
        } else {
            InCycle::Forming { stood_ns }
        };
        for link in &cycle.links {
            let key = match link.on {
                WaitsOn::Resource(id) => Key::Resource(id),
                WaitsOn::Join(other) => Key::Join(other),
            };
            let row = rows.entry(key).or_insert_with(|| match key {
                Key::Resource(id) => match cycle.resource(id) {
                    Some(resource) => resource_row(model, resource, cycle.standing_ns),
                    None => unknown_resource(id),
                },
                Key::Join(other) => join_row(model, other),
            });
            if !row.waiters.contains(&link.task) {
                row.waiters.push(link.task);
            }
            row.cycle = worse(row.cycle, mark);
        }
    }
}

/// The mark that puts a row higher: a deadlock over a forming cycle, the longer standing.
fn worse(a: InCycle, b: InCycle) -> InCycle {
    let rank = |mark: InCycle| match mark {
        InCycle::Deadlock { stood_ns } => (2, stood_ns),
        InCycle::Forming { stood_ns } => (1, stood_ns),
        InCycle::No => (0, 0),
    };
    if rank(b) > rank(a) { b } else { a }
}

fn resource_row(model: &Model, resource: &Resource, until_ns: u64) -> Row {
    let mut holders: Vec<Holder> = resource
        .holders
        .iter()
        .map(|&(task, since_ns, count)| Holder {
            task,
            what: describe(model, task),
            held_ns: Some(until_ns.saturating_sub(since_ns)),
            count,
        })
        .collect();
    holders.sort_by_key(|h| (Reverse(h.held_ns), h.task));
    Row {
        key: Key::Resource(resource.id),
        kind: resource.kind.clone(),
        location: resource.location.clone(),
        holders,
        guessed: !resource.exact,
        waiters: Vec::new(),
        longest_wait_ns: None,
        cycle: InCycle::No,
    }
}

/// A task awaited through `taskscope::join`: it "holds" its own end.
fn join_row(model: &Model, task: u64) -> Row {
    Row {
        key: Key::Join(task),
        kind: "join".to_owned(),
        location: model
            .task(task)
            .map(|t| model.location(t.location).to_owned())
            .unwrap_or_default(),
        holders: vec![Holder {
            task,
            what: describe(model, task),
            held_ns: None,
            count: 1,
        }],
        guessed: false,
        waiters: Vec::new(),
        longest_wait_ns: None,
        cycle: InCycle::No,
    }
}

/// A resource waited on that the probe's message left out.
fn unknown_resource(id: u64) -> Row {
    Row {
        key: Key::Resource(id),
        kind: "?".to_owned(),
        location: String::new(),
        holders: Vec::new(),
        guessed: false,
        waiters: Vec::new(),
        longest_wait_ns: None,
        cycle: InCycle::No,
    }
}

/// A holder in a few words: its name, else where it was spawned.
fn describe(model: &Model, task: u64) -> String {
    if task == 0 {
        return "outside any task".to_owned();
    }
    match model.task(task) {
        Some(t) => match &t.name {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => model.location(t.location).to_owned(),
        },
        None => String::new(),
    }
}
