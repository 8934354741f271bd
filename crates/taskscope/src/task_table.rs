//! The hooks route's live tasks, by tokio task id.
//!
//! tokio's hooks hand over nothing but the task's id, so every poll has to find the task's
//! cell from it. A sharded map keeps spawns on different threads off each other's locks;
//! in front of it, each thread keeps a small direct-mapped cache of the cells it polled
//! lately, so that the common poll finds its cell without a lock or a reference count.
//!
//! Why the cache may hold bare pointers: tokio task ids are never reused, and a task is
//! only polled while it is alive, which is while this table holds its cell. A cached
//! pointer is dereferenced only when a poll of that very id starts, so it is never
//! dereferenced after its task ended, however long it stays in the cache.

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::cell::TaskCell;

const SHARDS: usize = 64;
/// Cache slots per polling thread (16 bytes each). tokio hands out ids in spawn order, so
/// the tasks a thread polls in one stretch mostly map to distinct slots.
const CACHE_SLOTS: usize = 4096;

/// tokio's ids are sequential: the id is its own hash.
#[derive(Default)]
struct IdHasher(u64);

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

static TABLE: [Shard; SHARDS] =
    [const { Mutex::new(HashMap::with_hasher(BuildHasherDefault::new())) }; SHARDS];

thread_local! {
    /// `(id, cell)` pairs; allocated on a thread's first lookup.
    static CACHE: UnsafeCell<Vec<(u64, *const TaskCell)>> = const { UnsafeCell::new(Vec::new()) };
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
    shard(id).insert(id, cell);
}

/// A task ended: its cell leaves the table.
pub(crate) fn remove(id: u64) -> Option<Arc<TaskCell>> {
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
pub(crate) unsafe fn live<'a>(id: u64) -> Option<&'a TaskCell> {
    let cached = CACHE.try_with(|cache| {
        // SAFETY: only this thread touches its cache, and nothing here re-enters it.
        let cache = unsafe { &mut *cache.get() };
        if cache.is_empty() {
            cache.resize(CACHE_SLOTS, (0, std::ptr::null()));
        }
        let slot = &mut cache[(id as usize) % CACHE_SLOTS];
        if slot.0 == id {
            return Some(slot.1);
        }
        let cell = Arc::as_ptr(shard(id).get(&id)?);
        *slot = (id, cell);
        Some(cell)
    });
    let cell = match cached {
        Ok(cell) => cell?,
        // The thread is being torn down: no cache, ask the table.
        Err(_) => Arc::as_ptr(shard(id).get(&id)?),
    };
    // SAFETY: the cell came from the table for this id, ids are never reused, and the
    // caller guarantees the task is still in the table (see the module's doc).
    Some(unsafe { &*cell })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::{Identity, Kind};

    fn cell(id: u64) -> Arc<TaskCell> {
        Arc::new(TaskCell::new(Identity {
            id,
            name: None,
            kind: Kind::Task,
            file: "f.rs".into(),
            line: 1,
            column: 1,
            parent: 0,
            spawned_ns: 0,
            spawn_thread: 0,
        }))
    }

    #[test]
    fn finds_live_tasks_and_forgets_ended_ones() {
        // Ids far from other tests' (the table is process-wide).
        let base = 1 << 40;
        let a = cell(base);
        let colliding = cell(base + CACHE_SLOTS as u64);
        insert(base, a.clone());
        insert(base + CACHE_SLOTS as u64, colliding.clone());
        // SAFETY: both are in the table for the whole test.
        unsafe {
            assert!(std::ptr::eq(live(base).unwrap(), &*a));
            // Same cache slot: the second replaces the first, which is still found.
            assert!(std::ptr::eq(
                live(base + CACHE_SLOTS as u64).unwrap(),
                &*colliding
            ));
            assert!(std::ptr::eq(live(base).unwrap(), &*a));
        }
        assert!(Arc::ptr_eq(&remove(base).unwrap(), &a));
        assert!(get(base).is_none());
        assert!(remove(base + CACHE_SLOTS as u64).is_some());
        // SAFETY: an id never inserted is never dereferenced.
        assert!(unsafe { live(base + 1) }.is_none());
    }
}
