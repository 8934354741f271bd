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
//! A reused cell was last touched on the aggregator's core, so the spawning thread must
//! not *read* it: a read of a line another core holds waits for it, and the spawn hook
//! runs inside the app's poll. So everything that reads an old cell happens on the
//! aggregator's side when it gives the cell back: the check that nothing else holds it,
//! and the drop of what the old task left that owns memory (its name, its end, its panic:
//! `TaskCell::release_owned`). The spawning thread then only writes the new task over it,
//! and asks for the next cell's lines ahead of time (one spawn early), so that they are
//! its own by the time it writes them.
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

/// Cells waiting for reuse. Every cell in it is *unique* (no other reference to it exists)
/// and *blank* (its contents own nothing: `TaskCell::release_owned`), which is what lets
/// [`reuse`] write over one without reading or dropping it.
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
        // Emptied before the lock is taken: spawning threads refilling their stash wait
        // for nothing but the move. Those past the pool's room are then simply freed.
        let blanks: Vec<Arc<TaskCell>> = given
            .into_iter()
            .filter_map(|mut cell| {
                Arc::get_mut(&mut cell)?.release_owned();
                Some(cell)
            })
            .collect();
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        let room = POOL.saturating_sub(cells.len());
        cells.extend(blanks.into_iter().take(room));
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
            let cell = stash.pop()?;
            if let Some(next) = stash.last() {
                prefetch_for_write(next);
            }
            Some(cell)
        })
        .ok()
        .flatten();
    match reused {
        Some(reused) => reuse(reused, identity),
        None => Arc::new(TaskCell::new(identity)),
    }
}

/// `cell` (a pooled one: unique and blank) given the new task, without a read of it.
fn reuse(cell: Arc<TaskCell>, identity: Identity) -> Arc<TaskCell> {
    let fresh = TaskCell::new(identity);
    // SAFETY: the pool keeps only cells no one else references (checked when they were
    // given back; nothing clones one out of the pool), so this is the only pointer to
    // the cell and nothing reads it while it is written, as with `Arc::get_mut`. The old
    // contents are blank (`Pool`) and are overwritten without a drop, which frees
    // nothing they own because they own nothing.
    unsafe { std::ptr::write(Arc::as_ptr(&cell).cast_mut(), fresh) };
    cell
}

/// Asks the CPU to bring `cell`'s lines (its reference counts' included) to this core,
/// owned for writing, while the current spawn finishes: the next spawn writes all of them.
/// A plain prefetch would only share them, and each write would still wait for the other
/// core to let go.
#[inline]
fn prefetch_for_write(cell: &Arc<TaskCell>) {
    #[cfg(target_arch = "x86_64")]
    if has_prefetchw() {
        let data = Arc::as_ptr(cell).cast::<u8>();
        // The counts sit in the line before the cell's own (the cell is aligned to 64).
        let start = data.wrapping_sub(64);
        let bytes = 64 + std::mem::size_of::<TaskCell>();
        for offset in (0..bytes).step_by(64) {
            // SAFETY: a prefetch never faults and changes nothing a program can see; the
            // CPU has the instruction (checked above).
            unsafe {
                std::arch::asm!(
                    "prefetchw [{line}]",
                    line = in(reg) start.wrapping_add(offset),
                    options(nostack, preserves_flags, readonly)
                );
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cell;
}

/// Whether this CPU has `PREFETCHW` (CPUID leaf 0x8000_0001, ECX bit 8), asked once.
#[cfg(target_arch = "x86_64")]
fn has_prefetchw() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static KNOWN: AtomicU8 = AtomicU8::new(0);
    match KNOWN.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            // SAFETY: CPUID exists on every x86_64 CPU, and each answers leaf 0x8000_0001
            // (it is where the CPU says it has long mode).
            #[allow(unused_unsafe)]
            let leaf = unsafe { std::arch::x86_64::__cpuid(0x8000_0001) };
            let has = leaf.ecx & (1 << 8) != 0;
            KNOWN.store(if has { 2 } else { 1 }, Ordering::Relaxed);
            has
        }
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
        let old = Arc::new(TaskCell::new(Identity {
            name: Some("old".into()),
            ..identity(1)
        }));
        old.set_end(crate::tasks::outcome::ended_at_shutdown());
        let address = Arc::as_ptr(&old);
        let still_shared = Arc::new(TaskCell::new(identity(2)));
        let holder = still_shared.clone();
        pool.give_back([old, still_shared]);
        assert_eq!(Arc::strong_count(&holder), 1, "a shared cell is not kept");

        let mut stash = Vec::new();
        pool.take(&mut stash);
        assert_eq!(stash.len(), 1);
        let pooled = &stash[0];
        assert!(
            pooled.identity.name.is_none() && pooled.end().is_none(),
            "the old task's contents were dropped when it was given back"
        );
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
