//! The hooks route's live tasks, by tokio task id.
//!
//! tokio's hooks hand over nothing but the task's id, so every poll has to find the task's
//! cell from it. A sharded map holds the cells (spawns on different threads rarely meet
//! on one lock); in front of it, a direct-mapped index of recent `(id, cell)` pairs, filled
//! at spawn and on a miss and cleared at the task's end, lets the common poll find its
//! cell with three atomic loads and no lock, the very first poll included.
//!
//! Why the index may hold bare pointers: a slot hands a poll of task X only a cell stored
//! for X by X's own spawn or polls (`task_index.rs` says why, for every writer and reader),
//! and that cell is in this table, alive, from X's spawn until its end, which comes after
//! its last poll. So a pointer read under a matching id is the polling task's own, live
//! cell.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::tasks::cell::TaskCell;
use crate::tasks::task_index::{self, Slot};

const SHARDS: usize = 64;
/// Index slots (16 bytes each, 256 KiB in all, touched only as ids reach them). tokio
/// hands out ids in spawn order, so the last 16k tasks spawned never collide.
const INDEX_SLOTS: usize = 16 * 1024;

/// tokio's ids are sequential today (not promised): the id is its own hash.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = Mutex<HashMap<u64, Arc<TaskCell>, BuildHasherDefault<IdHasher>>>;

/// The hooks route's cells: global because tokio's poll hooks are plain callbacks given
/// only the task's id, called on every poll, where a lookup through a context would cost
/// another pointer chase and a reference count.
static TABLE: [Shard; SHARDS] =
    [const { Mutex::new(HashMap::with_hasher(BuildHasherDefault::new())) }; SHARDS];

static INDEX: [Slot<TaskCell>; INDEX_SLOTS] = [const {
    Slot {
        id: AtomicU64::new(task_index::EMPTY),
        value: AtomicPtr::new(std::ptr::null_mut()),
    }
}; INDEX_SLOTS];

fn slot_of(id: u64) -> &'static Slot<TaskCell> {
    &INDEX[(id as usize) % INDEX_SLOTS]
}

fn shard(
    id: u64,
) -> MutexGuard<'static, HashMap<u64, Arc<TaskCell>, BuildHasherDefault<IdHasher>>> {
    TABLE[(id as usize) % SHARDS]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// A task was spawned.
pub(crate) fn insert(id: u64, cell: Arc<TaskCell>) {
    let pointer = Arc::as_ptr(&cell);
    shard(id).insert(id, cell);
    slot_of(id).fill(id, pointer);
}

/// A task ended: its cell leaves the table.
pub(crate) fn remove(id: u64) -> Option<Arc<TaskCell>> {
    slot_of(id).clear(id);
    shard(id).remove(&id)
}

/// The cell of a task, shared (for the rare paths that need to keep it).
pub(crate) fn get(id: u64) -> Option<Arc<TaskCell>> {
    shard(id).get(&id).cloned()
}

/// The cell of a live task, for one of its polls.
///
/// # Safety
///
/// `id` must be a task that is in the table now and stays there for as long as the
/// returned reference is used (true for a task between the start and the end of its poll
/// when the end hook is what removes it).
// Only the hooks route reads a cell by its task's id, and it needs tokio's cfg.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) unsafe fn live<'a>(id: u64) -> Option<&'a TaskCell> {
    let slot = slot_of(id);
    let cell = match slot.get(id) {
        Some(cell) => cell,
        None => {
            let cell = Arc::as_ptr(shard(id).get(&id)?);
            slot.fill(id, cell);
            cell
        }
    };
    // SAFETY: a slot holds for `id` only the cell of the live task `id` (`task_index.rs`),
    // and the caller guarantees that task stays in the table while the reference is used.
    Some(unsafe { &*cell })
}

/// A tokio task id as a number. `Id` offers only `Hash` and `Display` publicly; it hashes
/// as its one `u64`, which the task table's hasher passes through.
#[cfg(tokio_unstable)]
pub(crate) fn task_id(id: tokio::task::Id) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<IdHasher>::default().hash_one(id)
}

/// Ids for the bodies of `#[taskscope::main]`/`#[taskscope::test]`, which tokio runs with
/// `block_on` and gives no task id: far above any id tokio hands out, and still exact as a
/// JSON number.
static NEXT_BODY_ID: AtomicU64 = AtomicU64::new(1 << 52);

/// A fresh id for a `block_on` body (also the bodies `body_watch.rs` watches).
pub(crate) fn next_body_id() -> u64 {
    NEXT_BODY_ID.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::cell::Identity;

    fn cell(id: u64) -> Arc<TaskCell> {
        Arc::new(TaskCell::new(Identity::for_test(id)))
    }

    #[test]
    fn finds_live_tasks_and_forgets_ended_ones() {
        // Ids far from other tests' (the table is process-wide).
        let base = 1 << 40;
        let a = cell(base);
        let colliding = cell(base + INDEX_SLOTS as u64);
        insert(base, a.clone());
        insert(base + INDEX_SLOTS as u64, colliding.clone());
        // SAFETY: both are in the table for the whole test.
        unsafe {
            assert!(std::ptr::eq(live(base).unwrap(), &*a));
            // Same index slot: the second replaces the first, which is still found.
            assert!(std::ptr::eq(
                live(base + INDEX_SLOTS as u64).unwrap(),
                &*colliding
            ));
            assert!(std::ptr::eq(live(base).unwrap(), &*a));
        }
        assert!(Arc::ptr_eq(&remove(base).unwrap(), &a));
        assert!(get(base).is_none());
        assert!(remove(base + INDEX_SLOTS as u64).is_some());
        // SAFETY: an id never inserted is never dereferenced.
        assert!(unsafe { live(base + 1) }.is_none());
    }
}
