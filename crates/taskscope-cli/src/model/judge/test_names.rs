//! Which libtest test a task belongs to: libtest runs each test on a thread named after
//! it, and a `#[tokio::test]` body spawns from that thread, so the answer is up the
//! task's parents, at the first one spawned there; failing that, at the thread of its
//! runtime's `block_on` task.

use std::collections::HashMap;

use crate::model::Model;
use crate::model::task::{Kind, Task};

/// How far up the parents a walk goes (a malformed stream could make them a cycle).
const MAX_DEPTH: usize = 256;

/// Test names, remembered per task: the leaks of a server hold 100k tasks under one
/// parent, and each walk would otherwise climb the same parents again.
pub(crate) struct TestNames<'a> {
    model: &'a Model,
    /// Runtime id to the thread its `block_on` ran on.
    block_on_threads: HashMap<u64, u32>,
    /// Task id to the test found up its parents (`None`: none there).
    up_the_parents: HashMap<u64, Option<String>>,
}

impl<'a> TestNames<'a> {
    pub(crate) fn new(model: &'a Model) -> Self {
        Self {
            model,
            block_on_threads: model
                .tasks()
                .filter(|t| t.kind == Kind::BlockOn && t.runtime_id != 0)
                .map(|t| (t.runtime_id, t.spawn_thread))
                .collect(),
            up_the_parents: HashMap::new(),
        }
    }

    /// The test `task` belongs to, when it ran under libtest.
    pub(crate) fn of(&mut self, task: &Task) -> Option<String> {
        self.up_the_parents(task).or_else(|| {
            self.block_on_threads
                .get(&task.runtime_id)
                .and_then(|&thread| self.test_thread(thread))
        })
    }

    fn up_the_parents(&mut self, task: &Task) -> Option<String> {
        let mut path = Vec::new();
        let mut current = Some(task);
        let found = loop {
            let Some(t) = current else { break None };
            if let Some(known) = self.up_the_parents.get(&t.id) {
                break known.clone();
            }
            if let Some(name) = self.test_thread(t.spawn_thread) {
                break Some(name);
            }
            if path.len() == MAX_DEPTH {
                break None;
            }
            path.push(t.id);
            current = (t.parent_id != 0)
                .then(|| self.model.task(t.parent_id))
                .flatten();
        };
        for id in path {
            self.up_the_parents.insert(id, found.clone());
        }
        found
    }

    fn test_thread(&self, number: u32) -> Option<String> {
        let name = &self.model.runtime().thread(number)?.name;
        looks_like_test(self.model, name).then(|| name.to_string())
    }
}

/// Thread names libtest gives are test paths (`tests::leaks_a_task`), or bare function
/// names in a test binary (whose file name ends in cargo's `-<16 hex digits>`).
fn looks_like_test(model: &Model, thread_name: &str) -> bool {
    if thread_name.is_empty() || thread_name == "main" || thread_name.starts_with("tokio-") {
        return false;
    }
    thread_name.contains("::") || is_cargo_test_binary(model.program())
}

fn is_cargo_test_binary(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    name.rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()))
}
