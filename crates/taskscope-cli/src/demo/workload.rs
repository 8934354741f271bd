//! The demo's workload: a small service with healthy tasks and one of each problem
//! taskscope finds, repeating so there is always something to look at.
//!
//! * healthy: tickers, and a listener handing short requests to workers (a task tree);
//! * a stall: every few seconds a report blocks its worker with `std::thread::sleep`;
//! * a lost waker: a future that returns `Pending` without keeping the waker;
//! * growth: sessions that are opened and never closed;
//! * panics and aborts: a flaky job, and slow jobs cancelled by a timeout;
//! * the blocking pool: file compression on `spawn_blocking`.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;

/// Runs the workload until killed (the dashboard kills it when it quits).
pub(crate) fn run() -> ExitCode {
    die_with_parent();
    // Before the runtime, so that its first tasks are seen.
    taskscope::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("demo-worker")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("taskscope demo: cannot start a runtime: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(workload());
    ExitCode::SUCCESS
}

/// A child left behind by a dashboard that was killed outright would run forever.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag on the calling thread's process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

/// Spawns with a name where tokio can name tasks (`--cfg tokio_unstable`). Tracks its
/// caller so each task's spawn location is the line that called this, not this function.
#[track_caller]
fn spawn<F>(name: &str, future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    #[cfg(tokio_unstable)]
    {
        match tokio::task::Builder::new().name(name).spawn(future) {
            Ok(handle) => handle,
            Err(error) => panic!("cannot spawn {name}: {error}"),
        }
    }
    #[cfg(not(tokio_unstable))]
    {
        let _ = name;
        tokio::spawn(future)
    }
}

async fn workload() {
    for (i, period) in [50u64, 120, 250, 1000].into_iter().enumerate() {
        spawn(
            &format!("ticker-{i}"),
            ticker(Duration::from_millis(period)),
        );
    }
    spawn("listener", listener());
    spawn("forgetful", ForgetfulWait);
    spawn("sessions", sessions());
    spawn("jobs", jobs());
    spawn("reports", reports()).await.ok();
}

async fn ticker(period: Duration) {
    let mut interval = tokio::time::interval(period);
    let mut sum = 0u64;
    loop {
        interval.tick().await;
        sum = sum.wrapping_add(std::hint::black_box(period.as_millis() as u64));
    }
}

/// Accepts a "request" every 40 ms and hands it to a worker that answers after a while.
async fn listener() {
    let mut n = 0u64;
    loop {
        tokio::time::sleep(Duration::from_millis(40)).await;
        n += 1;
        spawn("request", async move {
            tokio::time::sleep(Duration::from_millis(20 + n % 7 * 30)).await;
            let (tx, rx) = oneshot::channel();
            spawn("db-query", async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let _ = tx.send(n);
            });
            let _ = rx.await;
        });
    }
}

/// Blocks its worker thread for 300 ms every 4 s: the stall.
async fn reports() {
    loop {
        tokio::time::sleep(Duration::from_secs(4)).await;
        spawn("report", async {
            // The mistake: a blocking call inside async code.
            std::thread::sleep(Duration::from_millis(300));
        })
        .await
        .ok();
    }
}

/// Opens a session every 300 ms and never closes one: live tasks from this site rise.
async fn sessions() {
    let mut open = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (close, closed) = oneshot::channel::<()>();
        // Kept, never sent: the session waits with a live waker, so it is growth, not a
        // lost waker.
        open.push(close);
        spawn("session", async move {
            let _ = closed.await;
        });
    }
}

/// Every 3 s: a job that panics, and a slow job aborted after a second; every 2 s some
/// compression on the blocking pool.
async fn jobs() {
    let mut round = 0u64;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        round += 1;
        if round.is_multiple_of(3) {
            spawn("flaky-job", async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let input = "12x";
                let parsed: Result<u32, _> = input.parse();
                if parsed.is_err() {
                    panic!("flaky job {round}: cannot parse {input:?}");
                }
            });
            let slow = spawn("slow-job", tokio::time::sleep(Duration::from_secs(30)));
            spawn("timeout", async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                slow.abort();
            });
        }
        if round.is_multiple_of(2) {
            tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(200)));
        }
    }
}

/// Waits for a flag but never registers for a wake-up: nothing can wake its task.
struct ForgetfulWait;

impl Future for ForgetfulWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}
