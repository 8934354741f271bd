//! Task cells are reused instead of freed.
//!
//! A cell is allocated by the thread that spawns its task and, once the task has ended and
//! its retention is over, released by the probe's aggregator thread. With the system
//! allocator, memory freed on another thread than the one that allocated it misses both
//! threads' caches and ends in the shared arena, under its lock: measured on the `spawn`
//! benchmark, that cost the spawning thread more than the rest of the probe's spawn path
//! together. So the aggregator hands its last reference to a cell back here, and spawns
//! take cells from here first: in steady state a spawn allocates nothing.
//!
//! Bounded: at most [`POOL`] cells wait here (about 4 MiB), and at most [`STASH`] in each
//! spawning thread; anything beyond is simply freed.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use crate::tasks::cell::{Identity, TaskCell};

/// Cells waiting for reuse, process-wide.
const POOL: usize = 8 * 1024;
/// Cells a spawning thread takes from the pool at once.
const STASH: usize = 64;

/// Cells waiting for reuse.
struct Pool {
    cells: Mutex<Vec<Arc<TaskCell>>>,
}

impl Pool {
    const fn new() -> Self {
        Self {
            cells: Mutex::new(Vec::new()),
        }
    }

    /// Up to [`STASH`] cells, for one thread's stash.
    fn take(&self, into: &mut Vec<Arc<TaskCell>>) {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        let from = cells.len().saturating_sub(STASH);
        into.extend(cells.drain(from..));
    }

    fn give_back(&self, given: impl IntoIterator<Item = Arc<TaskCell>>) {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        for mut cell in given {
            if cells.len() < POOL && Arc::get_mut(&mut cell).is_some() {
                cells.push(cell);
            }
        }
    }
}

/// Ended tasks' cells, reused for new tasks: global because the spawn hooks, which take
/// them, carry no context but the task's id.
static CELLS: Pool = Pool::new();

thread_local! {
    static STASHED: RefCell<Vec<Arc<TaskCell>>> = const { RefCell::new(Vec::new()) };
}

/// A cell for a new task: a reused one when there is one.
pub(crate) fn cell(identity: Identity) -> Arc<TaskCell> {
    let reused = STASHED
        .try_with(|stash| {
            let mut stash = stash.try_borrow_mut().ok()?;
            if stash.is_empty() {
                CELLS.take(&mut stash);
            }
            stash.pop()
        })
        .ok()
        .flatten();
    match reused {
        Some(reused) => reuse(reused, identity),
        None => Arc::new(TaskCell::new(identity)),
    }
}

/// `cell`, emptied of its old task and given the new one.
fn reuse(mut cell: Arc<TaskCell>, identity: Identity) -> Arc<TaskCell> {
    match Arc::get_mut(&mut cell) {
        Some(unshared) => {
            *unshared = TaskCell::new(identity);
            cell
        }
        // Only unshared cells are kept, and nothing can clone one from the pool.
        None => Arc::new(TaskCell::new(identity)),
    }
}

/// The aggregator is done with these cells: those it held the last reference to are kept
/// for reuse, the others are simply dropped (their last holder frees them).
pub(crate) fn give_back(cells: impl IntoIterator<Item = Arc<TaskCell>>) {
    CELLS.give_back(cells);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(id: u64) -> Identity {
        Identity::for_test(id)
    }

    #[test]
    fn unshared_cells_given_back_are_reused_with_their_new_identity_only() {
        let pool = Pool::new();
        let old = Arc::new(TaskCell::new(identity(1)));
        old.set_end(crate::tasks::outcome::ended_at_shutdown());
        let address = Arc::as_ptr(&old);
        let still_shared = Arc::new(TaskCell::new(identity(2)));
        let holder = still_shared.clone();
        pool.give_back([old, still_shared]);
        assert_eq!(Arc::strong_count(&holder), 1, "a shared cell is not kept");

        let mut stash = Vec::new();
        pool.take(&mut stash);
        assert_eq!(stash.len(), 1);
        let reused = reuse(stash.pop().unwrap(), identity(3));
        assert_eq!(Arc::as_ptr(&reused), address, "the same memory");
        assert_eq!(reused.identity.id, 3);
        assert!(reused.end().is_none(), "nothing of the old task is left");
    }

    #[test]
    fn the_pool_is_bounded() {
        let pool = Pool::new();
        pool.give_back((0..POOL as u64 + 10).map(|i| Arc::new(TaskCell::new(identity(i)))));
        let mut stash = Vec::new();
        pool.take(&mut stash);
        assert_eq!(stash.len(), STASH);
        assert_eq!(pool.cells.lock().unwrap().len(), POOL - STASH);
    }
}
