//! A sketch of the other way into the runtime: tokio's task hooks instead of tracing spans.
//!
//! This is not the probe. It does, from `on_task_spawn` / `on_before_task_poll` /
//! `on_after_task_poll` / `on_task_terminate`, the per-poll work the probe's hot path does
//! (two clock readings, publishing "polling task T since t0" for a watchdog, updating the
//! task's counters and histogram bucket) and a per-task allocation, so that the harness can
//! show what that route would cost next to the tracing route the probe takes today. The
//! task table is deliberately plain (a sharded mutex map): a real implementation could only
//! be cheaper.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

/// Shards of the task table, so that spawning threads rarely meet on one lock.
const SHARDS: usize = 64;
/// Buckets of the sketch's poll-duration histogram (as many as the probe's).
const BUCKETS: usize = 44;

/// One task's counters, as the probe keeps them.
struct TaskStats {
    polls: AtomicU64,
    busy_ns: AtomicU64,
    histogram: [AtomicU32; BUCKETS],
}

/// A thread's "polling task T since t0", as the watchdog reads it.
struct Slot {
    task: AtomicU64,
    started_ns: AtomicU64,
}

type Table = Mutex<HashMap<u64, Arc<TaskStats>>>;

static TABLE: LazyLock<Vec<Table>> =
    LazyLock::new(|| (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect());
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

thread_local! {
    static SLOT: Slot = const {
        Slot { task: AtomicU64::new(0), started_ns: AtomicU64::new(0) }
    };
    static CURRENT: RefCell<Option<(Arc<TaskStats>, u64)>> = const { RefCell::new(None) };
}

/// The task id as a number. tokio's `Id` only offers `Hash` publicly; it hashes as its
/// one `u64`, which this hasher passes through unchanged.
fn key(id: tokio::task::Id) -> u64 {
    #[derive(Default)]
    struct PassThrough(u64);
    impl Hasher for PassThrough {
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
    let mut hasher = PassThrough::default();
    id.hash(&mut hasher);
    hasher.finish()
}

fn shard(id: u64) -> &'static Table {
    &TABLE[(id as usize) % SHARDS]
}

fn now_ns() -> u64 {
    EPOCH.elapsed().as_nanos() as u64
}

fn lock(table: &Table) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<TaskStats>>> {
    table.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds the hooks to a runtime builder.
pub(crate) fn install(builder: &mut tokio::runtime::Builder) {
    LazyLock::force(&EPOCH);
    builder
        .on_task_spawn(|meta| {
            let id = key(meta.id());
            let stats = Arc::new(TaskStats {
                polls: AtomicU64::new(0),
                busy_ns: AtomicU64::new(0),
                histogram: [const { AtomicU32::new(0) }; BUCKETS],
            });
            std::hint::black_box(meta.spawned_at());
            lock(shard(id)).insert(id, stats);
        })
        .on_before_task_poll(|meta| {
            let id = key(meta.id());
            let stats = lock(shard(id)).get(&id).cloned();
            let now = now_ns();
            SLOT.with(|slot| {
                slot.task.store(id, Ordering::Relaxed);
                slot.started_ns.store(now, Ordering::Release);
            });
            CURRENT.with(|current| *current.borrow_mut() = stats.map(|s| (s, now)));
        })
        .on_after_task_poll(|_meta| {
            let now = now_ns();
            SLOT.with(|slot| slot.task.store(0, Ordering::Release));
            // The poll holds its own reference: tokio may run the terminate hook (which
            // removes the entry) before this one.
            let Some((stats, started)) = CURRENT.with(|current| current.borrow_mut().take()) else {
                return;
            };
            let duration = now.saturating_sub(started);
            let bump = |field: &AtomicU64, by| {
                field.store(field.load(Ordering::Relaxed) + by, Ordering::Relaxed)
            };
            bump(&stats.polls, 1);
            bump(&stats.busy_ns, duration);
            let bucket = (64 - duration.leading_zeros() as usize).min(BUCKETS - 1);
            stats.histogram[bucket].fetch_add(1, Ordering::Relaxed);
        })
        .on_task_terminate(|meta| {
            let id = key(meta.id());
            lock(shard(id)).remove(&id);
        });
}
