//! Tens of thousands of tasks alive at once on the hooks route, spawned from several
//! threads while the runtime polls the ones already there: the load under which two
//! writers meet on one slot of the probe's task index. Every task counts its own polls and
//! the program writes the counts out (`STORM_COUNTS`), so a test can hold the probe's
//! per-task poll counts to the truth.
//!
//! Settings (environment): `STORM_FLAVOR` (`multi_thread`, the default, with 4 workers, or
//! `current_thread`), `STORM_TASKS` (45,000), `STORM_YIELDS` (8 per task),
//! `STORM_SPAWNERS` (4 threads), `STORM_COUNTS` (a file for `task-id polls` lines).

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A task's id and the polls it counted.
type Counts = (String, u64);

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A future that counts how often it is polled: the truth the probe's counts are held to.
struct Counted<F> {
    inner: Pin<Box<F>>,
    polls: u64,
}

impl<F: Future<Output = ()>> Future for Counted<F> {
    type Output = Counts;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.polls += 1;
        match self.inner.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready((tokio::task::id().to_string(), self.polls)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// One task: yields, waits until every task is alive, yields again.
async fn storm_task(yields: usize, started: Arc<AtomicUsize>, mut go: watch::Receiver<bool>) {
    started.fetch_add(1, Ordering::Relaxed);
    for _ in 0..yields / 2 {
        tokio::task::yield_now().await;
    }
    while !*go.borrow_and_update() {
        if go.changed().await.is_err() {
            break;
        }
    }
    for _ in 0..yields - yields / 2 {
        tokio::task::yield_now().await;
    }
}

fn main() {
    taskscope::Builder::from_env()
        .init_with_hooks()
        .expect("the probe starts");
    let tasks = setting("STORM_TASKS", 45_000);
    let yields = setting("STORM_YIELDS", 8);
    let spawners = setting("STORM_SPAWNERS", 4).max(1);
    let mut builder = match std::env::var("STORM_FLAVOR").as_deref() {
        Ok("current_thread") => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(4);
            builder
        }
    };
    taskscope::hooks::install(&mut builder);
    let runtime = builder.enable_all().build().expect("runtime builds");

    let started = Arc::new(AtomicUsize::new(0));
    let (release, go) = watch::channel(false);
    // Spawned from threads of their own, onto the runtime, while it polls.
    let spawning: Vec<std::thread::JoinHandle<Vec<JoinHandle<Counts>>>> = (0..spawners)
        .map(|n| {
            let handle = runtime.handle().clone();
            let (started, go) = (started.clone(), go.clone());
            let share = tasks / spawners + usize::from(n < tasks % spawners);
            std::thread::spawn(move || {
                (0..share)
                    .map(|_| {
                        let task = storm_task(yields, started.clone(), go.clone());
                        handle.spawn(Counted {
                            inner: Box::pin(task),
                            polls: 0,
                        })
                    })
                    .collect()
            })
        })
        .collect();
    let handles: Vec<_> = spawning
        .into_iter()
        .flat_map(|spawner| spawner.join().expect("a spawner thread"))
        .collect();

    let counts = runtime.block_on(async move {
        while started.load(Ordering::Relaxed) < tasks {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        println!("{tasks} tasks alive");
        release.send(true).expect("tasks are listening");
        let mut counts = Vec::with_capacity(tasks);
        for handle in handles {
            counts.push(handle.await.expect("a storm task"));
        }
        counts
    });
    drop(runtime);
    if let Ok(path) = std::env::var("STORM_COUNTS") {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("counts file"));
        for (id, polls) in &counts {
            writeln!(out, "{id} {polls}").expect("counts written");
        }
    }
    println!("{} tasks done", counts.len());
}
