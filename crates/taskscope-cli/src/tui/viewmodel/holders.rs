//! Who holds what a task waits on, in words for the task details: "`Mutex` at
//! src/db.rs:40:13, held by task 17 (src/cache.rs:88:5) for 2.30s; waiting 1.50s", and
//! what the task holds itself. From the model's wait-for graph alone.

use crate::duration::human_ns;
use crate::model::Model;
use crate::model::wait_graph::WaitsOn;

/// What `task` waits on and who holds it, when the probe said; `None` when it waits on
/// nothing the probe tracks.
pub(crate) fn waits_on(model: &Model, task: u64) -> Option<String> {
    let graph = model.wait_graph();
    let wait = graph.wait_of(task)?;
    let since = human_ns(model.now_ns().saturating_sub(wait.since_ns));
    let text = match &wait.on {
        WaitsOn::Join(other) => format!(
            "the end of task {other}{} (its JoinHandle); waiting {since}",
            spawned_at(model, *other)
        ),
        WaitsOn::Resource(id) => {
            let Some(resource) = graph.resource(*id) else {
                return Some(format!(
                    "waiting on a lock the probe no longer tracks, for {since}"
                ));
            };
            let holders: Vec<String> = resource
                .holders
                .iter()
                .map(|&(holder, held_since, _)| match holder {
                    0 => "code outside any task".to_owned(),
                    holder => format!(
                        "task {holder}{} for {}",
                        spawned_at(model, holder),
                        human_ns(model.now_ns().saturating_sub(held_since))
                    ),
                })
                .collect();
            let held = match holders.as_slice() {
                [] => ", free now".to_owned(),
                held => format!(
                    ", held by {}{}",
                    held.join(", "),
                    if resource.exact { "" } else { " (a guess)" }
                ),
            };
            format!(
                "`{}` at {}{held}; waiting {since}",
                resource.kind, resource.location
            )
        }
    };
    Some(text)
}

/// The locks and permits `task` holds, one line each.
pub(crate) fn holds(model: &Model, task: u64) -> Vec<String> {
    let graph = model.wait_graph();
    graph
        .resources()
        .filter_map(|resource| {
            let &(_, since, count) = resource.holders.iter().find(|h| h.0 == task)?;
            let waiters = graph.waiters_of(resource.id).count();
            let times = if count > 1 {
                format!(" ({count} guards)")
            } else {
                String::new()
            };
            Some(format!(
                "`{}` at {}{times} for {}, {waiters} task{} waiting",
                resource.kind,
                resource.location,
                human_ns(model.now_ns().saturating_sub(since)),
                if waiters == 1 { "" } else { "s" }
            ))
        })
        .collect()
}

fn spawned_at(model: &Model, task: u64) -> String {
    model
        .task(task)
        .map(|t| format!(" ({})", model.location(t.location)))
        .unwrap_or_default()
}
