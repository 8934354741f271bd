//! The wait-for graph, on the probe's thread: every tracked lock and semaphore with its
//! holders, folded from the routes' [`ResourceEvent`]s in the order they were queued, and
//! every live task's wait, read from its cell (`tasks/waits.rs`).
//!
//! The probe states facts and leaves judging to the client: a cycle of waits is a
//! deadlock only once it has lasted, and only `check` and the dashboard know for how long
//! someone has been watching.
//!
//! Ordering: tokio reports a `Mutex` released after giving it back, so the next holder's
//! `Acquired` can come first. A resource that ends up with more holders than permits has
//! its oldest other holder taken off at once, and that holder's late `Released` is then
//! expected and ignored. For a lock of one permit this is exact. A semaphore of several
//! permits hands a permit straight to a waiter without saying whose it was, so the oldest
//! holder is a guess, and the resource is marked inexact until it is free again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use taskscope_api::v1;

use crate::tasks::cell::TaskCell;
use crate::tasks::shared::Shared;
use crate::tasks::waits::{ResourceEvent, ResourceKind, WaitTarget};

/// Resources tracked at most; more are counted in `Drops.wait_events` and left out.
const MAX_RESOURCES: usize = 16 * 1024;
/// Holders kept per resource (a semaphore of a thousand permits), and releases expected.
const MAX_HOLDERS: usize = 256;
/// Resources and waits in one graph message at most.
const MAX_IN_MESSAGE: usize = 2 * 1024;

struct Resource {
    kind: ResourceKind,
    location: v1::Location,
    /// Permits (1 for a `Mutex`), 0 when unknown (an `RwLock`'s readers are unbounded).
    capacity: u64,
    /// Oldest first.
    holders: Vec<v1::Holder>,
    /// Tasks taken off as holders before their `Released` came.
    released_early: Vec<u64>,
    exact: bool,
}

impl Resource {
    fn held(&self) -> u64 {
        self.holders.iter().map(|h| u64::from(h.count)).sum()
    }

    fn acquired(&mut self, task: u64, at_ns: u64) {
        let room = self.holders.len() < MAX_HOLDERS;
        match self.holders.iter_mut().find(|h| h.task_id == task) {
            Some(holder) => holder.count = holder.count.saturating_add(1),
            None if room => self.holders.push(v1::Holder {
                task_id: task,
                since_ns: at_ns,
                count: 1,
            }),
            None => self.exact = false,
        }
        if self.capacity > 0 && self.held() > self.capacity {
            let others = self.holders.iter().filter(|h| h.task_id != task).count();
            if self.capacity > 1 || others > 1 {
                self.exact = false;
            }
            if let Some(oldest) = self.holders.iter().position(|h| h.task_id != task) {
                let gone = self.holders[oldest].task_id;
                self.take_one(oldest);
                if self.released_early.len() < MAX_HOLDERS {
                    self.released_early.push(gone);
                }
            }
        }
    }

    fn released(&mut self, task: u64) {
        if let Some(at) = self.holders.iter().position(|h| h.task_id == task) {
            self.take_one(at);
        } else if let Some(at) = self.released_early.iter().position(|&t| t == task) {
            self.released_early.swap_remove(at);
        } else if !self.holders.is_empty() {
            // A guard moved to another task and dropped there: whose it was is certain
            // only when one task holds the resource.
            if self.holders.len() > 1 {
                self.exact = false;
            }
            self.take_one(0);
        }
        if self.holders.is_empty() {
            self.exact = true;
        }
    }

    fn take_one(&mut self, at: usize) {
        let holder = &mut self.holders[at];
        holder.count = holder.count.saturating_sub(1);
        if holder.count == 0 {
            self.holders.remove(at);
        }
    }
}

/// The resources and their holders, and the graph last published.
pub(crate) struct WaitGraph {
    events: Option<Receiver<ResourceEvent>>,
    resources: HashMap<u64, Resource>,
    published: Option<v1::WaitGraph>,
}

impl WaitGraph {
    pub(crate) fn new(shared: &Shared) -> Self {
        Self {
            events: shared.resources.take_receiver(),
            resources: HashMap::new(),
            published: None,
        }
    }

    /// Takes in the resource changes queued since the last call.
    pub(crate) fn drain(&mut self, shared: &Shared) {
        let Some(events) = &self.events else { return };
        let events: Vec<ResourceEvent> = events.try_iter().collect();
        for event in events {
            if !self.apply(event) {
                shared
                    .drops
                    .wait_events
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// `false` when the event had to be dropped (too many resources).
    fn apply(&mut self, event: ResourceEvent) -> bool {
        match event {
            ResourceEvent::Created {
                id,
                kind,
                file,
                line,
                column,
            } => {
                if self.resources.len() >= MAX_RESOURCES {
                    return false;
                }
                self.resources.insert(
                    id,
                    Resource {
                        kind,
                        location: v1::Location {
                            file: file.to_owned(),
                            line,
                            column,
                        },
                        capacity: u64::from(kind == ResourceKind::Mutex),
                        holders: Vec::new(),
                        released_early: Vec::new(),
                        exact: true,
                    },
                );
            }
            ResourceEvent::Capacity { id, permits } => {
                if let Some(resource) = self.resources.get_mut(&id) {
                    resource.capacity = permits;
                }
            }
            ResourceEvent::Acquired { id, task, at_ns } => {
                if let Some(resource) = self.resources.get_mut(&id) {
                    resource.acquired(task, at_ns);
                }
            }
            ResourceEvent::Released { id, task } => {
                if let Some(resource) = self.resources.get_mut(&id) {
                    resource.released(task);
                }
            }
            ResourceEvent::Closed { id } => {
                self.resources.remove(&id);
            }
        }
        true
    }

    /// The graph now: the waits of `live` tasks, and every resource held or waited on.
    pub(crate) fn current<'a>(
        &self,
        live: impl Iterator<Item = &'a Arc<TaskCell>>,
    ) -> v1::WaitGraph {
        let mut graph = v1::WaitGraph::default();
        let mut waited = HashSet::new();
        for cell in live {
            let Some((target, since_ns)) = cell.current_wait() else {
                continue;
            };
            if graph.waits.len() >= MAX_IN_MESSAGE {
                graph.left_out += 1;
                continue;
            }
            let (resource_id, joins_task) = match target {
                WaitTarget::Resource(id) => {
                    waited.insert(id);
                    (id, 0)
                }
                WaitTarget::Join(task) => (0, task),
            };
            graph.waits.push(v1::TaskWait {
                task_id: cell.identity.id,
                resource_id,
                joins_task,
                since_ns,
            });
        }
        graph.waits.sort_by_key(|wait| wait.task_id);
        let mut ids: Vec<u64> = self
            .resources
            .iter()
            .filter(|(id, r)| !r.holders.is_empty() || waited.contains(*id))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            if graph.resources.len() >= MAX_IN_MESSAGE {
                graph.left_out += 1;
                continue;
            }
            let resource = &self.resources[&id];
            graph.resources.push(v1::Resource {
                id,
                kind: resource.kind.name().to_owned(),
                location: Some(resource.location.clone()),
                holders: resource.holders.clone(),
                capacity: resource.capacity,
                exact: resource.exact,
            });
        }
        graph
    }

    /// The graph when it changed since the last call; `None` when unchanged.
    pub(crate) fn changed<'a>(
        &mut self,
        live: impl Iterator<Item = &'a Arc<TaskCell>>,
    ) -> Option<v1::WaitGraph> {
        let graph = self.current(live);
        if self.published.as_ref() == Some(&graph)
            || (self.published.is_none() && graph == v1::WaitGraph::default())
        {
            return None;
        }
        self.published = Some(graph.clone());
        Some(graph)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mutex() -> Resource {
        Resource {
            kind: ResourceKind::Mutex,
            location: v1::Location::default(),
            capacity: 1,
            holders: Vec::new(),
            released_early: Vec::new(),
            exact: true,
        }
    }

    fn holders(resource: &Resource) -> Vec<u64> {
        resource.holders.iter().map(|h| h.task_id).collect()
    }

    #[test]
    fn a_mutex_taken_before_its_release_is_reported_has_one_holder_the_new_one() {
        let mut lock = mutex();
        lock.acquired(1, 10);
        // Task 2 takes it; task 1's release is reported after.
        lock.acquired(2, 20);
        assert_eq!(holders(&lock), [2]);
        lock.released(1);
        assert_eq!(holders(&lock), [2]);
        assert!(lock.exact);
        lock.released(2);
        assert!(holders(&lock).is_empty());
    }

    #[test]
    fn a_guard_dropped_by_another_task_frees_the_lock() {
        let mut lock = mutex();
        lock.acquired(1, 10);
        lock.released(7);
        assert!(holders(&lock).is_empty());
        assert!(lock.exact);
    }

    #[test]
    fn a_permit_handed_over_in_a_semaphore_of_several_makes_its_holders_a_guess() {
        let mut semaphore = Resource {
            kind: ResourceKind::Semaphore,
            capacity: 2,
            ..mutex()
        };
        semaphore.acquired(1, 10);
        semaphore.acquired(2, 20);
        semaphore.acquired(3, 30);
        assert_eq!(holders(&semaphore), [2, 3]);
        assert!(!semaphore.exact);
        semaphore.released(2);
        semaphore.released(3);
        assert!(semaphore.exact, "free again, so certain again");
    }
}
