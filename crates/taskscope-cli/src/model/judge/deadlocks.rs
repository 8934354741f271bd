//! The deadlock rule: a cycle of waits that stood at least `--deadlock-after` is one
//! finding naming every task in it, and the leaks of those tasks are folded into it (the
//! same tasks, already explained).

use std::collections::HashSet;

use crate::duration::human_ns;
use crate::model::Model;
use crate::model::stall::is_user_location;
use crate::model::wait_graph::{Cycle, WaitsOn};

use super::finding::{CycleTask, Detail};
use super::policy::{FindingKind, Policy};
use super::rules::{Occurrence, describe};

/// Adds a finding per deadlock in `model`, and drops the leaks and lost wakers of the tasks
/// in them.
pub(crate) fn find(model: &Model, policy: &Policy, found: &mut Vec<Occurrence>) {
    let mut in_deadlock = HashSet::new();
    for cycle in model.wait_graph().cycles() {
        if cycle.stood_ns() < policy.deadlock_after_ns {
            continue;
        }
        in_deadlock.extend(cycle.tasks());
        found.push(occurrence(model, cycle));
    }
    found.retain(|o| {
        !(matches!(
            o.kind,
            FindingKind::AliveAtShutdown | FindingKind::LostWaker
        ) && in_deadlock.contains(&o.task_id))
    });
}

fn occurrence(model: &Model, cycle: &Cycle) -> Occurrence {
    let tasks: Vec<CycleTask> = cycle
        .links
        .iter()
        .map(|link| {
            let task = model.task(link.task);
            let waits_on = match &link.on {
                WaitsOn::Join(other) => format!("the end of task {other} (its `JoinHandle`)"),
                WaitsOn::Resource(id) => match cycle.resource(*id) {
                    Some(resource) => {
                        let held = resource
                            .holders
                            .iter()
                            .find(|h| h.0 == link.waits_for)
                            .map(|h| {
                                format!(" for {}", human_ns(cycle.standing_ns.saturating_sub(h.1)))
                            })
                            .unwrap_or_default();
                        format!(
                            "`{}` created at {}, held by task {}{held}",
                            resource.kind, resource.location, link.waits_for
                        )
                    }
                    None => format!("resource {id}"),
                },
            };
            CycleTask {
                task_id: link.task,
                task_name: task.and_then(|t| t.name.clone()).map(String::from),
                spawn_location: task
                    .map_or(crate::model::UNKNOWN_LOCATION, |t| {
                        model.location(t.location)
                    })
                    .to_owned(),
                waiting_at: model
                    .waiting()
                    .of(link.task)
                    .map(|chain| chain.shown_frames())
                    .unwrap_or_default(),
                waits_on,
                waits_for: link.waits_for,
            }
        })
        .collect();
    let lines: Vec<String> = tasks
        .iter()
        .map(|t| {
            let at = t
                .await_location()
                .map(|l| format!(" waits at {l}"))
                .unwrap_or_else(|| " waits".to_owned());
            format!(
                "{} (spawned at {}){at} on {}",
                describe(t.task_id, model.task(t.task_id)),
                t.spawn_location,
                t.waits_on
            )
        })
        .collect();
    let message = format!(
        "deadlock: {} task{} wait on each other, for {} so far: {}",
        tasks.len(),
        if tasks.len() == 1 { "" } else { "s" },
        human_ns(cycle.stood_ns()),
        lines.join("; ")
    );
    let first = &tasks[0];
    Occurrence {
        kind: FindingKind::Deadlock,
        spawn_location: first.spawn_location.clone(),
        task_id: first.task_id,
        task_name: first.task_name.clone(),
        message,
        pid: model.pid(),
        program: model.program().to_owned(),
        weight: cycle.stood_ns(),
        test: None,
        waiting_at: first.waiting_at.clone(),
        detail: Detail::Deadlock { tasks },
    }
}

impl CycleTask {
    /// The `.await` in the user's code it waits at, when a dump reached it: never a frame
    /// of taskscope's own (`taskscope::join`'s poll is the call awaited, like tokio's
    /// `Mutex::lock`, whether taskscope is built from the registry or from a path).
    pub(crate) fn await_location(&self) -> Option<&str> {
        self.waiting_at
            .iter()
            .filter(|frame| !frame.function.starts_with("taskscope::"))
            .filter(|frame| !frame.function.starts_with("<taskscope::"))
            .filter_map(|frame| frame.location.as_deref())
            .find(|location| is_user_location(location))
    }
}
