//! Where the live tasks wait, grouped by the `.await` in the user's code each is parked on:
//! the rows of the Waiting view, and the key the task table filters by when one is opened.
//!
//! Read from the model's await chains (see [`crate::model::waiting`]); a task counts where
//! its latest chain says, however old that chain is (the views say how old).

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use crate::model::Model;
use crate::model::names::short_function;
use crate::model::task::Task;
use crate::model::waiting::{Leaf, Waiting};

/// What a group of tasks has in common.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum WaitKey {
    /// Parked on the `.await` at `location` (`file:line:col`) in `function`.
    At {
        location: Box<str>,
        function: Box<str>,
    },
    /// A chain, but no frame of it in the user's code (e.g. a runtime-internal future).
    Elsewhere,
    /// No chain: no dump reached the task (yet).
    NoChain,
}

/// The borrowed form of [`WaitKey`], so that grouping 100k tasks allocates per group only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum KeyRef<'a> {
    At {
        location: &'a str,
        function: &'a str,
    },
    Elsewhere,
    NoChain,
}

fn key_ref<'a>(waiting: &'a Waiting, task: &Task) -> KeyRef<'a> {
    let Some(chain) = waiting.of(task.id) else {
        return KeyRef::NoChain;
    };
    match chain.await_point() {
        Some((_, frame)) => KeyRef::At {
            location: frame.location.as_deref().unwrap_or(""),
            function: &frame.function,
        },
        None => KeyRef::Elsewhere,
    }
}

impl WaitKey {
    fn owned(key: KeyRef<'_>) -> Self {
        match key {
            KeyRef::At { location, function } => Self::At {
                location: location.into(),
                function: function.into(),
            },
            KeyRef::Elsewhere => Self::Elsewhere,
            KeyRef::NoChain => Self::NoChain,
        }
    }

    /// Whether live task `task` waits where this key says.
    pub(crate) fn matches(&self, waiting: &Waiting, task: &Task) -> bool {
        if !task.is_live() {
            return false;
        }
        match (self, key_ref(waiting, task)) {
            (
                Self::At { location, function },
                KeyRef::At {
                    location: l,
                    function: f,
                },
            ) => **location == *l && **function == *f,
            (Self::Elsewhere, KeyRef::Elsewhere) | (Self::NoChain, KeyRef::NoChain) => true,
            _ => false,
        }
    }

    /// A few words for the footer of a task table filtered by this key.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::At { location, function } => {
                format!("waiting at {location} in {}", short_function(function))
            }
            Self::Elsewhere => "waiting outside your code".to_owned(),
            Self::NoChain => "live, with no await chain".to_owned(),
        }
    }
}

/// The live tasks parked at one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) key: WaitKey,
    pub(crate) tasks: usize,
    /// What the tasks there await (the call inside the `.await`, as the first backtrace
    /// seen there says), if known.
    pub(crate) awaited: Option<Box<str>>,
}

/// Every live task grouped by where it waits: the most crowded `.await` first, then tasks
/// waiting outside the user's code, then tasks with no chain. Empty when no dump has been
/// seen and no task has a chain: then there is nothing to group by.
pub(crate) fn groups(model: &Model) -> Vec<Group> {
    let waiting = model.waiting();
    if waiting.latest().is_none() {
        return Vec::new();
    }
    // Tasks parked at the same place share one backtrace: count by backtrace (a pointer,
    // cheap to hash), then merge backtraces that meet at the same `.await`.
    let mut by_leaf: HashMap<*const Leaf, (&Leaf, usize)> = HashMap::new();
    let (mut elsewhere, mut no_chain) = (0, 0);
    for task in model.tasks().filter(|t| t.is_live()) {
        let Some(chain) = waiting.of(task.id) else {
            no_chain += 1;
            continue;
        };
        match chain.leaves.iter().find(|l| l.await_point().is_some()) {
            Some(leaf) => by_leaf.entry(Arc::as_ptr(leaf)).or_insert((leaf, 0)).1 += 1,
            None => elsewhere += 1,
        }
    }
    let mut by_key: HashMap<KeyRef<'_>, (usize, Option<&str>)> = HashMap::new();
    for (leaf, tasks) in by_leaf.into_values() {
        let Some(frame) = leaf.await_point() else {
            continue;
        };
        let key = KeyRef::At {
            location: frame.location.as_deref().unwrap_or(""),
            function: &frame.function,
        };
        let awaited = leaf.awaited_call().map(|call| &*call.function);
        let entry = by_key.entry(key).or_insert((0, awaited));
        entry.0 += tasks;
    }
    let mut groups: Vec<Group> = by_key
        .into_iter()
        .map(|(key, (tasks, awaited))| Group {
            key: WaitKey::owned(key),
            tasks,
            awaited: awaited.map(Into::into),
        })
        .collect();
    groups.sort_by(|a, b| (Reverse(a.tasks), &a.key).cmp(&(Reverse(b.tasks), &b.key)));
    for (key, tasks) in [
        (WaitKey::Elsewhere, elsewhere),
        (WaitKey::NoChain, no_chain),
    ] {
        if tasks > 0 {
            groups.push(Group {
                key,
                tasks,
                awaited: None,
            });
        }
    }
    groups
}
