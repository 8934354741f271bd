//! The task table's rows: which tasks, in which order, at which tree depth, and one row
//! for each spawn site whose short-lived tasks the probe counted instead of sending.
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
use crate::model::folded::Folded;
use crate::model::task::Task;
use crate::model::{LocationId, Model};

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

/// What a row stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Item {
    Task(u64),
    /// A spawn site's short-lived tasks, which the probe counted instead of sending one by
    /// one: their tally, in one row.
    Site(LocationId),
}

impl Item {
    /// The task's id, when the row is a task.
    #[cfg(test)]
    pub(crate) fn task(self) -> Option<u64> {
        match self {
            Self::Task(id) => Some(id),
            Self::Site(_) => None,
        }
    }
}

/// One row: a task (or a site's tally) and how deep it sits in the tree (0 when flat).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) item: Item,
    pub(crate) depth: u16,
}

/// The state a site's row shows and is filtered and sorted by: every task counted by site
/// completed.
pub(crate) const SITE_STATE: &str = "done";
/// What marks a site's row in the flag column; filtering by it lists the sites alone.
pub(crate) const SITE_MARK: &str = "site";

/// What the rows depend on besides the model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) sort: Sort,
    /// Lower-case words that must all appear in a task's name, location or state (a site's
    /// location, its state or its mark).
    pub(crate) filter: String,
    pub(crate) tree: bool,
    /// Only the live tasks waiting there (a row of the Waiting view, opened).
    pub(crate) awaiting: Option<WaitKey>,
}

/// A row being sorted: a task, or a site's tally.
#[derive(Clone, Copy)]
enum Entry<'a> {
    Task(&'a Task),
    Site(LocationId, &'a Folded),
}

impl<'a> Entry<'a> {
    fn name(self) -> Option<&'a str> {
        match self {
            Self::Task(task) => task.name.as_deref(),
            // Only tasks without a name are counted by site.
            Self::Site(..) => None,
        }
    }

    fn state(self) -> &'static str {
        match self {
            Self::Task(task) => metrics::state_label(task),
            Self::Site(..) => SITE_STATE,
        }
    }

    fn item(self) -> Item {
        match self {
            Self::Task(task) => Item::Task(task.id),
            Self::Site(site, _) => Item::Site(site),
        }
    }
}

/// The rows for `query`, at probe time `now_ns`: the tasks, and a row for each spawn site
/// whose short-lived tasks were counted there, sorted and filtered alike.
pub(crate) fn build(model: &Model, findings: &Findings, query: &Query, now_ns: u64) -> Vec<Row> {
    let words: Vec<String> = query
        .filter
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    // Locations repeat across thousands of tasks: match each one once.
    let mut location_matches: HashMap<_, Vec<bool>> = HashMap::new();
    let mut by_location = |site: LocationId, i: usize| {
        location_matches.entry(site).or_insert_with(|| {
            let location = model.location(site).to_lowercase();
            words.iter().map(|w| location.contains(w)).collect()
        })[i]
    };
    let mut tasks: Vec<&Task> = Vec::new();
    for task in model.tasks() {
        let awaits = query
            .awaiting
            .as_ref()
            .is_none_or(|key| key.matches(model.waiting(), task));
        if !awaits {
            continue;
        }
        // Without words, every task: no name lowered, no allocation per task.
        let matches = words.is_empty() || {
            let name = task.name.as_deref().unwrap_or("").to_lowercase();
            let state = metrics::state_label(task);
            words.iter().enumerate().all(|(i, word)| {
                by_location(task.location, i)
                    || name.contains(word.as_str())
                    || state.contains(word)
            })
        };
        if matches {
            tasks.push(task);
        }
    }
    let mut sites: Vec<Entry> = Vec::new();
    // A site's tasks are over: none waits anywhere.
    if query.awaiting.is_none() {
        for (site, tally) in model.folded().filter(|(_, tally)| tally.tasks > 0) {
            let matches = words.iter().enumerate().all(|(i, word)| {
                by_location(site, i) || SITE_STATE.contains(word) || SITE_MARK.contains(word)
            });
            if matches {
                sites.push(Entry::Site(site, tally));
            }
        }
    }
    let order = Order {
        model,
        findings,
        sort: query.sort,
        now_ns,
    };
    // The tasks sorted on their own (the costly part at 100k, on pointers), the few sites
    // beside them, then the two merged.
    order.sort_tasks(&mut tasks);
    sites.sort_by(|a, b| order.cmp(*a, *b));
    let row = |item| Row { item, depth: 0 };
    if query.tree {
        tree(&order.merge(&tasks, &sites))
    } else if sites.is_empty() {
        tasks.iter().map(|t| row(Item::Task(t.id))).collect()
    } else {
        let merged = order.merge(&tasks, &sites);
        merged.iter().map(|e| row(e.item())).collect()
    }
}

/// The order of rows whose sort keys are equal: sites first (a few rows that stand for
/// many tasks), by location, then tasks by id.
fn tie(model: &Model, a: Entry, b: Entry) -> Ordering {
    match (a, b) {
        (Entry::Task(a), Entry::Task(b)) => a.id.cmp(&b.id),
        (Entry::Site(a, _), Entry::Site(b, _)) => model.location(a).cmp(model.location(b)),
        (Entry::Site(..), Entry::Task(_)) => Ordering::Less,
        (Entry::Task(_), Entry::Site(..)) => Ordering::Greater,
    }
}

/// How rows are ordered: by the sorted column, then as [`tie`] says.
struct Order<'a> {
    model: &'a Model,
    findings: &'a Findings,
    sort: Sort,
    now_ns: u64,
}

impl Order<'_> {
    /// The sort key of a numeric column. A site's row has a number for polls and busy
    /// time only (its tally); the others (flags, durations of one task, wakers, parent)
    /// count as zero.
    fn number(&self, entry: Entry) -> u64 {
        let task = match entry {
            Entry::Task(task) => task,
            Entry::Site(_, tally) => {
                return match self.sort.column {
                    Column::Busy => tally.busy_ns,
                    Column::Polls => tally.polls,
                    _ => 0,
                };
            }
        };
        let now_ns = self.now_ns;
        match self.sort.column {
            Column::Flags => u64::from(self.findings.flags(task.id).rank()),
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
    }

    fn location(&self, entry: Entry) -> &str {
        match entry {
            Entry::Task(task) => self.model.location(task.location),
            Entry::Site(site, _) => self.model.location(site),
        }
    }

    fn directed(&self, ordering: Ordering) -> Ordering {
        if self.sort.descending() {
            ordering.reverse()
        } else {
            ordering
        }
    }

    /// The order of any two rows.
    fn cmp(&self, a: Entry, b: Entry) -> Ordering {
        let key = match self.sort.column {
            Column::Id => match (a, b) {
                (Entry::Task(x), Entry::Task(y)) => self.directed(x.id.cmp(&y.id)),
                _ => Ordering::Equal,
            },
            Column::Name => self.directed(a.name().cmp(&b.name())),
            Column::State => self.directed(a.state().cmp(b.state())),
            Column::Location => self.directed(self.location(a).cmp(self.location(b))),
            _ => self.directed(self.number(a).cmp(&self.number(b))),
        };
        key.then_with(|| tie(self.model, a, b))
    }

    /// Sorts tasks alone, as [`Order::cmp`] would, with keys computed once per task.
    fn sort_tasks(&self, tasks: &mut [&Task]) {
        let by_id = |a: &&Task, b: &&Task| a.id.cmp(&b.id);
        let model = self.model;
        match self.sort.column {
            Column::Id => tasks.sort_unstable_by(|a, b| self.directed(by_id(a, b))),
            Column::Name => tasks.sort_unstable_by(|a, b| {
                self.directed(a.name.cmp(&b.name)).then_with(|| by_id(a, b))
            }),
            Column::State => tasks.sort_unstable_by(|a, b| {
                self.directed(metrics::state_label(a).cmp(metrics::state_label(b)))
                    .then_with(|| by_id(a, b))
            }),
            Column::Location => tasks.sort_unstable_by(|a, b| {
                self.directed(model.location(a.location).cmp(model.location(b.location)))
                    .then_with(|| by_id(a, b))
            }),
            _ => {
                // Keys first: computing them inside the comparison would redo it n log n
                // times.
                let mut keyed: Vec<(u64, &Task)> = (tasks.iter())
                    .map(|&t| (self.number(Entry::Task(t)), t))
                    .collect();
                keyed.sort_unstable_by(|a, b| {
                    self.directed(a.0.cmp(&b.0)).then_with(|| by_id(&a.1, &b.1))
                });
                for (slot, (_, task)) in tasks.iter_mut().zip(keyed) {
                    *slot = task;
                }
            }
        }
    }

    /// Sorted tasks and sorted sites, as one sorted list.
    fn merge<'a>(&self, tasks: &[&'a Task], sites: &[Entry<'a>]) -> Vec<Entry<'a>> {
        let mut merged = Vec::with_capacity(tasks.len() + sites.len());
        let mut sites = sites.iter().copied().peekable();
        for &task in tasks {
            while let Some(site) =
                sites.next_if(|&site| self.cmp(site, Entry::Task(task)) != Ordering::Greater)
            {
                merged.push(site);
            }
            merged.push(Entry::Task(task));
        }
        merged.extend(sites);
        merged
    }
}

/// Parents before their children, depth first; siblings keep the sorted order. A task
/// whose parent is not shown (ended and gone, or filtered out) is a root, and so is a
/// site's row.
fn tree(sorted: &[Entry]) -> Vec<Row> {
    let shown: HashMap<u64, usize> = sorted
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Entry::Task(t) => Some((t.id, i)),
            Entry::Site(..) => None,
        })
        .collect();
    let mut children: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (index, entry) in sorted.iter().enumerate() {
        match entry {
            Entry::Task(task)
                if task.parent_id != 0
                    && task.parent_id != task.id
                    && shown.contains_key(&task.parent_id) =>
            {
                children.entry(task.parent_id).or_default().push(index);
            }
            _ => roots.push(index),
        }
    }
    let mut rows = Vec::with_capacity(sorted.len());
    let mut visited = vec![false; sorted.len()];
    let mut stack: Vec<(usize, u16)> = roots.iter().rev().map(|&i| (i, 0)).collect();
    while let Some((index, depth)) = stack.pop() {
        if std::mem::replace(&mut visited[index], true) {
            continue;
        }
        let entry = sorted[index];
        rows.push(Row {
            item: entry.item(),
            depth,
        });
        if let Entry::Task(task) = entry
            && let Some(kids) = children.get(&task.id)
        {
            stack.extend(kids.iter().rev().map(|&i| (i, depth.saturating_add(1))));
        }
    }
    // Tasks in a parent cycle (only a corrupt stream makes one) are still listed.
    for (index, entry) in sorted.iter().enumerate() {
        if !visited[index] {
            rows.push(Row {
                item: entry.item(),
                depth: 0,
            });
        }
    }
    rows
}
