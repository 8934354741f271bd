//! The task table's rows: which tasks, in which order, at which tree depth.
//!
//! Built from the whole model, so it is the one costly step of a frame at 100k tasks; the
//! app rebuilds it only when the data changed (at most a few times a second) or when the
//! sort, filter or tree mode changed — never per frame. Drawing then only looks up the
//! rows on screen.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::findings::Findings;
use super::metrics;
use super::waits::WaitKey;
use crate::model::Model;
use crate::model::task::Task;

/// The task table's columns, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Column {
    Flags,
    Id,
    Name,
    State,
    Poll,
    Total,
    Busy,
    Scheduled,
    Idle,
    Polls,
    Wakers,
    Location,
    Parent,
}

impl Column {
    pub(crate) const ALL: [Self; 13] = [
        Self::Flags,
        Self::Id,
        Self::Name,
        Self::State,
        Self::Poll,
        Self::Total,
        Self::Busy,
        Self::Scheduled,
        Self::Idle,
        Self::Polls,
        Self::Wakers,
        Self::Location,
        Self::Parent,
    ];

    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::Flags => "Flag",
            Self::Id => "ID",
            Self::Name => "Name",
            Self::State => "State",
            Self::Poll => "Poll",
            Self::Total => "Total",
            Self::Busy => "Busy",
            Self::Scheduled => "Sched",
            Self::Idle => "Idle",
            Self::Polls => "Polls",
            Self::Wakers => "Wkr",
            Self::Location => "Spawned at",
            Self::Parent => "Parent",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|&c| c == self).unwrap_or(0)
    }

    pub(crate) fn next(self) -> Self {
        Self::ALL[(self.index() + 1) % Self::ALL.len()]
    }

    pub(crate) fn prev(self) -> Self {
        Self::ALL[(self.index() + Self::ALL.len() - 1) % Self::ALL.len()]
    }

    /// Whether the natural order is biggest first (durations, counts, flags).
    fn descending_by_default(self) -> bool {
        !matches!(
            self,
            Self::Id | Self::Name | Self::State | Self::Location | Self::Parent
        )
    }
}

/// The sort column and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sort {
    pub(crate) column: Column,
    /// Against the column's natural order (`i` inverts).
    pub(crate) inverted: bool,
}

impl Default for Sort {
    /// Worst first: flagged tasks on top, then by id.
    fn default() -> Self {
        Self {
            column: Column::Flags,
            inverted: false,
        }
    }
}

impl Sort {
    pub(crate) fn descending(self) -> bool {
        self.column.descending_by_default() != self.inverted
    }
}

/// One row: a task and how deep it sits in the tree (0 when flat).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) id: u64,
    pub(crate) depth: u16,
}

/// What the rows depend on besides the model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) sort: Sort,
    /// Lower-case words that must all appear in a task's name, location or state.
    pub(crate) filter: String,
    pub(crate) tree: bool,
    /// Only the live tasks waiting there (a row of the Waiting view, opened).
    pub(crate) awaiting: Option<WaitKey>,
}

/// The rows for `query`, at probe time `now_ns`.
pub(crate) fn build(model: &Model, findings: &Findings, query: &Query, now_ns: u64) -> Vec<Row> {
    let words: Vec<String> = query
        .filter
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    // Locations repeat across thousands of tasks: match each one once.
    let mut location_matches: HashMap<_, Vec<bool>> = HashMap::new();
    let mut tasks: Vec<&Task> = model
        .tasks()
        .filter(|task| {
            query
                .awaiting
                .as_ref()
                .is_none_or(|key| key.matches(model.waiting(), task))
        })
        .filter(|task| {
            if words.is_empty() {
                return true;
            }
            let by_location = location_matches.entry(task.location).or_insert_with(|| {
                let location = model.location(task.location).to_lowercase();
                words.iter().map(|w| location.contains(w)).collect()
            });
            let name = task.name.as_deref().unwrap_or("").to_lowercase();
            let state = metrics::state_label(task);
            words.iter().enumerate().all(|(i, word)| {
                by_location[i] || name.contains(word.as_str()) || state.contains(word.as_str())
            })
        })
        .collect();
    sort(&mut tasks, model, findings, query.sort, now_ns);
    if query.tree {
        tree(&tasks)
    } else {
        tasks.iter().map(|t| Row { id: t.id, depth: 0 }).collect()
    }
}

fn sort(tasks: &mut [&Task], model: &Model, findings: &Findings, sort: Sort, now_ns: u64) {
    let number = |task: &Task| -> u64 {
        match sort.column {
            Column::Flags => u64::from(findings.flags(task.id).rank()),
            Column::Id | Column::Name | Column::Location => 0,
            Column::State => 0,
            Column::Poll => metrics::current_poll_ns(task, now_ns).unwrap_or(0),
            Column::Total => metrics::total_ns(task, now_ns),
            Column::Busy => task.stats.busy_ns,
            Column::Scheduled => task.stats.scheduled_ns,
            Column::Idle => metrics::idle_ns(task, now_ns),
            Column::Polls => task.stats.polls,
            Column::Wakers => task.stats.wakers.max(0) as u64,
            Column::Parent => task.parent_id,
        }
    };
    let by_id = |a: &&Task, b: &&Task| a.id.cmp(&b.id);
    let directed = |ordering: Ordering| {
        if sort.descending() {
            ordering.reverse()
        } else {
            ordering
        }
    };
    match sort.column {
        Column::Id => tasks.sort_unstable_by(|a, b| directed(by_id(a, b))),
        Column::Name => {
            tasks.sort_unstable_by(|a, b| directed(a.name.cmp(&b.name)).then_with(|| by_id(a, b)))
        }
        Column::State => tasks.sort_unstable_by(|a, b| {
            directed(metrics::state_label(a).cmp(metrics::state_label(b))).then_with(|| by_id(a, b))
        }),
        Column::Location => tasks.sort_unstable_by(|a, b| {
            directed(model.location(a.location).cmp(model.location(b.location)))
                .then_with(|| by_id(a, b))
        }),
        _ => {
            // Keys first: computing them inside the comparison would redo it n log n times.
            let mut keyed: Vec<(u64, &Task)> = tasks.iter().map(|&t| (number(t), t)).collect();
            keyed.sort_unstable_by(|a, b| directed(a.0.cmp(&b.0)).then_with(|| by_id(&a.1, &b.1)));
            for (slot, (_, task)) in tasks.iter_mut().zip(keyed) {
                *slot = task;
            }
        }
    }
}

/// Parents before their children, depth first; siblings keep the sorted order. A task
/// whose parent is not shown (ended and gone, or filtered out) is a root.
fn tree(sorted: &[&Task]) -> Vec<Row> {
    let shown: HashMap<u64, usize> = sorted.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
    let mut children: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (index, task) in sorted.iter().enumerate() {
        if task.parent_id != 0 && task.parent_id != task.id && shown.contains_key(&task.parent_id) {
            children.entry(task.parent_id).or_default().push(index);
        } else {
            roots.push(index);
        }
    }
    let mut rows = Vec::with_capacity(sorted.len());
    let mut visited = vec![false; sorted.len()];
    let mut stack: Vec<(usize, u16)> = roots.iter().rev().map(|&i| (i, 0)).collect();
    while let Some((index, depth)) = stack.pop() {
        if std::mem::replace(&mut visited[index], true) {
            continue;
        }
        let task = sorted[index];
        rows.push(Row { id: task.id, depth });
        if let Some(kids) = children.get(&task.id) {
            stack.extend(kids.iter().rev().map(|&i| (i, depth.saturating_add(1))));
        }
    }
    // Tasks in a parent cycle (only a corrupt stream makes one) are still listed.
    for (index, task) in sorted.iter().enumerate() {
        if !visited[index] {
            rows.push(Row {
                id: task.id,
                depth: 0,
            });
        }
    }
    rows
}
