//! Who waits on whom, and the cycles in it: the probe's latest wait-for graph, and every
//! cycle of waits seen standing, for as long as it stood.
//!
//! An edge goes from a task to the task that must act before it can go on: the holder of
//! the lock or permit it waits on, or the task whose `JoinHandle` it awaits. A lock or
//! semaphore with several holders lets a waiter on as soon as *any* of them gives back, so
//! a waiter is stuck only when every holder is stuck: the stuck tasks are what remains
//! after taking away, again and again, every task with a way out; a cycle among them is a
//! deadlock. Holders the probe had to guess (`Resource.exact` false) never make one.
//!
//! A cycle is remembered from the first update it is seen in, with each task's count of
//! polls as of the last update that showed the task still waiting as in the cycle: a poll
//! that leaves a task waiting on the same thing keeps its wait's start (the probe's
//! `tasks/waits.rs`), so a task re-polled without moving on (a task dump wakes every task
//! it traces) has made no progress. Once the cycle is out of the graph, what its tasks did
//! since says whether it resolved:
//!
//! * a task that waits on something else, or anew, or ended in any way but being cancelled
//!   by its runtime's shutdown (a timeout or an abort that breaks the cycle), moved on: the
//!   cycle is forgotten;
//! * a task polled since, not ended, may have moved on, or may be in the one enter tokio
//!   makes to drop a cancelled task's future, which the probe counts as a poll until the
//!   task's end takes it back; its wait is then gone from the graph for a moment before the
//!   end arrives, so the cycle is kept, not shown, until the task's end or next wait tells;
//! * when every task was cancelled at shutdown without a poll since, or is still not
//!   polled since, the cycle still stands: out of the graph only because the shutdown
//!   dropped its tasks (and their guards), it stood until they ended.
//!
//! How long a cycle must stand to be a deadlock is the judge's to decide
//! (`check --deadlock-after`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use taskscope_api::v1;

use super::task::{Outcome, Task};

/// One task's wait, as the probe last reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Wait {
    pub(crate) on: WaitsOn,
    /// Probe time since which it waits there.
    pub(crate) since_ns: u64,
}

/// What a task waits on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WaitsOn {
    /// A lock or semaphore (its id in [`WaitGraph::resource`]).
    Resource(u64),
    /// The end of another task, whose `JoinHandle` it awaits.
    Join(u64),
}

/// A lock or semaphore with its holders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resource {
    pub(crate) id: u64,
    /// `Mutex`, `RwLock`, `Semaphore`.
    pub(crate) kind: String,
    /// `file:line:col` of its creation.
    pub(crate) location: String,
    /// Oldest first: (task, since when, guards or permits).
    pub(crate) holders: Vec<(u64, u64, u32)>,
    pub(crate) capacity: u64,
    pub(crate) exact: bool,
}

impl Resource {
    fn from_wire(resource: &v1::Resource) -> Self {
        Self {
            id: resource.id,
            kind: resource.kind.clone(),
            location: resource
                .location
                .as_ref()
                .map(|l| format!("{}:{}:{}", l.file, l.line, l.column))
                .unwrap_or_default(),
            holders: resource
                .holders
                .iter()
                .map(|h| (h.task_id, h.since_ns, h.count))
                .collect(),
            capacity: resource.capacity,
            exact: resource.exact,
        }
    }
}

/// One task of a cycle: what it waits on and the task of the cycle it waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) task: u64,
    pub(crate) on: WaitsOn,
    /// The next task of the cycle: the holder of what it waits on, or the joined task.
    pub(crate) waits_for: u64,
}

/// A cycle of waits, as long as it has been seen standing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cycle {
    /// In cycle order, starting at the lowest task id.
    pub(crate) links: Vec<Link>,
    /// The resources its tasks wait on, as they were when last seen.
    pub(crate) resources: Vec<Resource>,
    /// Probe time it formed: the latest of its waits' and holds' starts.
    pub(crate) formed_ns: u64,
    /// Probe time it was last known standing.
    pub(crate) standing_ns: u64,
    /// Each task's wait in the cycle, and its completed polls when it was last seen waiting
    /// there.
    seen: Vec<Seen>,
    /// Standing, or stuck since it was last seen standing; `false` while what its tasks did
    /// since cannot be told yet (then it is not shown).
    stuck: bool,
}

/// One task of a cycle as last seen waiting in it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    task: u64,
    wait: Wait,
    polls: u64,
}

/// What the tasks of a cycle no longer in the graph did since it was last seen standing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Since {
    /// Nothing: every task is where it was, or was cancelled at shutdown there.
    Stuck,
    /// A task was polled since and has not said yet whether it moved on.
    Unsure,
    /// A task waits on something else, or anew, or ended on its own or by an abort.
    MovedOn,
}

impl Cycle {
    /// How long it has stood.
    pub(crate) fn stood_ns(&self) -> u64 {
        self.standing_ns.saturating_sub(self.formed_ns)
    }

    pub(crate) fn tasks(&self) -> impl Iterator<Item = u64> + '_ {
        self.links.iter().map(|link| link.task)
    }

    pub(crate) fn resource(&self, id: u64) -> Option<&Resource> {
        self.resources.iter().find(|r| r.id == id)
    }

    /// What its tasks did since it was last seen standing, from their waits now and
    /// `tasks`.
    fn since(&self, waits: &BTreeMap<u64, Wait>, tasks: &HashMap<u64, Task>) -> Since {
        let mut since = Since::Stuck;
        for seen in &self.seen {
            let Some(task) = tasks.get(&seen.task) else {
                return Since::MovedOn;
            };
            if waits.get(&seen.task).is_some_and(|wait| *wait != seen.wait) {
                return Since::MovedOn;
            }
            let polled = task.stats.polls > seen.polls;
            match &task.end {
                // Its end took back the enter that dropped its future: its polls are final.
                Some(end) if end.outcome == Outcome::CancelledAtShutdown && !polled => {}
                Some(_) => return Since::MovedOn,
                None if polled => since = Since::Unsure,
                None => {}
            }
        }
        since
    }

    /// Takes each task's polls now where it still waits as in the cycle: polls that left it
    /// there are no progress. The graph is read after the statistics it comes with, so
    /// those polls all came before it.
    fn note_still_waiting(&mut self, waits: &BTreeMap<u64, Wait>, tasks: &HashMap<u64, Task>) {
        for seen in &mut self.seen {
            if waits.get(&seen.task) == Some(&seen.wait)
                && let Some(task) = tasks.get(&seen.task)
                && task.end.is_none()
            {
                seen.polls = seen.polls.max(task.stats.polls);
            }
        }
    }
}

/// The latest graph, and the cycles seen in it.
#[derive(Clone, Debug, Default)]
pub(crate) struct WaitGraph {
    waits: BTreeMap<u64, Wait>,
    resources: BTreeMap<u64, Resource>,
    /// Waits or resources the probe left out of its message.
    pub(crate) left_out: u64,
    /// Keyed by the cycle's tasks, sorted.
    cycles: BTreeMap<Vec<u64>, Cycle>,
}

impl WaitGraph {
    /// Takes in the probe's new graph (replacing the previous one).
    pub(crate) fn replace(&mut self, graph: &v1::WaitGraph) {
        self.waits = graph
            .waits
            .iter()
            .map(|wait| {
                let on = if wait.joins_task != 0 {
                    WaitsOn::Join(wait.joins_task)
                } else {
                    WaitsOn::Resource(wait.resource_id)
                };
                let since_ns = wait.since_ns;
                (wait.task_id, Wait { on, since_ns })
            })
            .collect();
        self.resources = graph
            .resources
            .iter()
            .map(|r| (r.id, Resource::from_wire(r)))
            .collect();
        self.left_out = graph.left_out;
    }

    /// Brings the cycles up to date at probe time `now_ns`, once an update is folded in.
    pub(crate) fn settle(&mut self, now_ns: u64, tasks: &HashMap<u64, Task>) {
        if self.waits.is_empty() && self.cycles.is_empty() {
            return;
        }
        let standing = self.standing_cycles(tasks);
        let standing_keys: HashSet<&Vec<u64>> = standing.iter().map(|(key, _)| key).collect();
        let waits = &self.waits;
        self.cycles.retain(|key, cycle| {
            if standing_keys.contains(key) {
                return true;
            }
            match cycle.since(waits, tasks) {
                Since::MovedOn => return false,
                Since::Unsure => cycle.stuck = false,
                Since::Stuck => {
                    cycle.stuck = true;
                    // Gone from the graph with its tasks, cancelled at shutdown: it stood
                    // until they ended.
                    let ended = cycle
                        .seen
                        .iter()
                        .filter_map(|seen| Some(tasks.get(&seen.task)?.end.as_ref()?.ended_ns))
                        .min();
                    if let Some(ended) = ended {
                        cycle.standing_ns = cycle.standing_ns.max(ended);
                    }
                }
            }
            true
        });
        for (key, mut cycle) in standing {
            match self.cycles.get_mut(&key) {
                Some(known) if known.formed_ns == cycle.formed_ns => {
                    known.standing_ns = now_ns;
                    known.resources = cycle.resources;
                    known.stuck = true;
                }
                _ => {
                    cycle.standing_ns = now_ns;
                    self.cycles.insert(key, cycle);
                }
            }
        }
        for cycle in self.cycles.values_mut() {
            cycle.note_still_waiting(&self.waits, tasks);
        }
    }

    /// Every cycle seen and not resolved, lowest task ids first (not one whose tasks have
    /// not yet said whether they moved on).
    pub(crate) fn cycles(&self) -> impl Iterator<Item = &Cycle> {
        self.cycles.values().filter(|cycle| cycle.stuck)
    }

    /// What `task` waits on now, if the probe said.
    pub(crate) fn wait_of(&self, task: u64) -> Option<&Wait> {
        self.waits.get(&task)
    }

    pub(crate) fn resource(&self, id: u64) -> Option<&Resource> {
        self.resources.get(&id)
    }

    /// Every resource held or waited on now, by id.
    pub(crate) fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values()
    }

    /// Every task that waits now, with its wait, by task id.
    pub(crate) fn waits(&self) -> impl Iterator<Item = (u64, &Wait)> {
        self.waits.iter().map(|(task, wait)| (*task, wait))
    }

    /// The tasks waiting on resource `id` now, with since when.
    pub(crate) fn waiters_of(&self, id: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.waits
            .iter()
            .filter(move |(_, wait)| wait.on == WaitsOn::Resource(id))
            .map(|(task, wait)| (*task, wait.since_ns))
    }

    /// The tasks `task` waits for now (empty when its wait has no known holder, or goes
    /// through a holder the probe had to guess).
    fn waits_for(&self, task: u64, tasks: &HashMap<u64, Task>) -> Vec<u64> {
        let live = |id: &u64| tasks.get(id).is_none_or(|t| t.end.is_none());
        match self.waits.get(&task).map(|w| &w.on) {
            Some(WaitsOn::Join(other)) if live(other) => vec![*other],
            Some(WaitsOn::Resource(id)) => match self.resources.get(id) {
                Some(resource) if resource.exact => resource
                    .holders
                    .iter()
                    .map(|&(holder, _, _)| holder)
                    .filter(|holder| *holder != 0 && live(holder))
                    .collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// The cycles among the stuck tasks of the graph now.
    fn standing_cycles(&self, tasks: &HashMap<u64, Task>) -> Vec<(Vec<u64>, Cycle)> {
        let edges: HashMap<u64, Vec<u64>> = self
            .waits
            .keys()
            .map(|&task| (task, self.waits_for(task, tasks)))
            .filter(|(_, next)| !next.is_empty())
            .collect();
        // Take away every task with a way out: one of those it waits for is not stuck.
        let mut stuck: BTreeSet<u64> = edges.keys().copied().collect();
        loop {
            let free: Vec<u64> = stuck
                .iter()
                .copied()
                .filter(|task| edges[task].iter().any(|next| !stuck.contains(next)))
                .collect();
            if free.is_empty() {
                break;
            }
            for task in free {
                stuck.remove(&task);
            }
        }
        // Every stuck task waits only on stuck tasks: walk from each to find the cycles.
        let mut found = Vec::new();
        let mut on_a_cycle: HashSet<u64> = HashSet::new();
        for &start in &stuck {
            if on_a_cycle.contains(&start) {
                continue;
            }
            let mut path = vec![start];
            let mut at = start;
            let cycle = loop {
                let next = edges[&at][0];
                if let Some(pos) = path.iter().position(|&t| t == next) {
                    break path.split_off(pos);
                }
                path.push(next);
                at = next;
            };
            if cycle.iter().any(|t| on_a_cycle.contains(t)) {
                continue;
            }
            on_a_cycle.extend(cycle.iter().copied());
            found.push(self.cycle(cycle));
        }
        found
    }

    fn cycle(&self, mut order: Vec<u64>) -> (Vec<u64>, Cycle) {
        let lowest = order
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| **t)
            .map_or(0, |(i, _)| i);
        order.rotate_left(lowest);
        let mut formed_ns = 0;
        let mut links = Vec::new();
        let mut resources = Vec::new();
        let mut seen = Vec::new();
        for (i, &task) in order.iter().enumerate() {
            let next = order[(i + 1) % order.len()];
            let wait = &self.waits[&task];
            seen.push(Seen {
                task,
                wait: wait.clone(),
                // Taken from the task by `note_still_waiting` at once.
                polls: 0,
            });
            formed_ns = formed_ns.max(wait.since_ns);
            if let WaitsOn::Resource(id) = wait.on
                && let Some(resource) = self.resources.get(&id)
            {
                if let Some(&(_, since, _)) = resource.holders.iter().find(|h| h.0 == next) {
                    formed_ns = formed_ns.max(since);
                }
                resources.push(resource.clone());
            }
            links.push(Link {
                task,
                on: wait.on.clone(),
                waits_for: next,
            });
        }
        let mut key = order;
        key.sort_unstable();
        let cycle = Cycle {
            links,
            resources,
            formed_ns,
            standing_ns: 0,
            seen,
            stuck: true,
        };
        (key, cycle)
    }
}
