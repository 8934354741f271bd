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
//! A cycle is remembered from the first update it is seen in. It is forgotten as resolved
//! when one of its tasks makes progress: polled again, or ended in any way but being
//! cancelled by its runtime's shutdown (a timeout or an abort that breaks the cycle). When
//! it is no longer in the graph only because its tasks were cancelled at shutdown (their
//! guards dropped with them), it stood until then. How long a cycle must stand to be a
//! deadlock is the judge's to decide (`check --deadlock-after`).

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
    /// Each task's completed polls when the cycle was first seen.
    polls: Vec<(u64, u64)>,
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
        self.cycles.retain(|key, cycle| {
            if standing_keys.contains(key) {
                return true;
            }
            let stuck_at_end = cycle.polls.iter().all(|&(id, polls)| match tasks.get(&id) {
                Some(task) => match &task.end {
                    Some(end) => end.outcome == Outcome::CancelledAtShutdown,
                    None => task.stats.polls <= polls,
                },
                None => false,
            });
            if stuck_at_end {
                // Gone from the graph with its tasks, cancelled at shutdown: it stood
                // until they ended.
                let ended = cycle
                    .polls
                    .iter()
                    .filter_map(|(id, _)| tasks.get(id)?.end.as_ref().map(|end| end.ended_ns))
                    .min();
                if let Some(ended) = ended {
                    cycle.standing_ns = cycle.standing_ns.max(ended);
                }
            }
            stuck_at_end
        });
        for (key, mut cycle) in standing {
            match self.cycles.get_mut(&key) {
                Some(known) if known.formed_ns == cycle.formed_ns => {
                    known.standing_ns = now_ns;
                    known.resources = cycle.resources;
                }
                _ => {
                    cycle.standing_ns = now_ns;
                    cycle.polls = key
                        .iter()
                        .map(|id| (*id, tasks.get(id).map_or(0, |t| t.stats.polls)))
                        .collect();
                    self.cycles.insert(key, cycle);
                }
            }
        }
    }

    /// Every cycle seen and not resolved, lowest task ids first.
    pub(crate) fn cycles(&self) -> impl Iterator<Item = &Cycle> {
        self.cycles.values()
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
        for (i, &task) in order.iter().enumerate() {
            let next = order[(i + 1) % order.len()];
            let wait = &self.waits[&task];
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
            polls: Vec::new(),
        };
        (key, cycle)
    }
}
