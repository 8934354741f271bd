//! A dump must never hurt the app it is taken of: not freeze a busy runtime, not hang a
//! process at exit, not strand a child of a sub-executor (`FuturesUnordered`, `join_all`).
//! Each case runs the real example, many times, on a machine loaded on purpose where the
//! trouble came from load: busy threads pinned to the app's CPU fill its run queues.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use taskscope_api::v1;
use taskscope_e2e::load::{BusyThreads, pinned};
use taskscope_e2e::{Running, Served, command};

/// How many times each case runs: a freeze that came 5 times in 6 must not come once.
const RUNS: usize = 20;
/// A runtime that printed nothing for this long after a dump is frozen (it prints every
/// 200 ms).
const SILENCE: Duration = Duration::from_secs(10);
/// After how long without a round `fan_out` counts a parent as lagging.
const LAGGING_AFTER: Duration = Duration::from_secs(3);

/// One `progress rounds=R lagging=L` line of `fan_out`.
#[derive(Debug, Clone, Copy)]
struct Progress {
    at: Instant,
    rounds: u64,
    lagging: u64,
}

fn parse(line: &str) -> Option<Progress> {
    let rest = line.strip_prefix("progress rounds=")?;
    let (rounds, lagging) = rest.split_once(" lagging=")?;
    Some(Progress {
        at: Instant::now(),
        rounds: rounds.parse().ok()?,
        lagging: lagging.trim().parse().ok()?,
    })
}

/// `fan_out` (or its current-thread twin) served, its progress lines read on a thread.
fn start(example: &str, parents: usize, load: bool) -> (Served, mpsc::Receiver<Progress>) {
    let mut app = Served::start(example, |command| {
        command
            .env("PARENTS", parents.to_string())
            .stdout(Stdio::piped());
        if load {
            pinned(command);
        }
    });
    let stdout = app.running.stdout();
    let (lines, progress) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(p) = parse(&line)
                && lines.send(p).is_err()
            {
                return;
            }
        }
    });
    (app, progress)
}

/// The next progress line within [`SILENCE`], or `None`: the runtime is frozen.
fn next(progress: &mpsc::Receiver<Progress>) -> Option<Progress> {
    progress.recv_timeout(SILENCE).ok()
}

/// Asks for one dump of a running `fan_out` and watches the app for long enough after it
/// that a stranded child shows as a lagging parent: the dump if the app was unharmed,
/// what happened to it otherwise.
async fn dump_and_watch(
    app: &Served,
    progress: &mpsc::Receiver<Progress>,
) -> Result<v1::Dump, String> {
    let started = next(progress).expect("the app prints its progress");
    // Running for a while: every parent has finished rounds.
    let mut before = started;
    while before.at - started.at < Duration::from_secs(1) {
        before = next(progress).expect("the app prints its progress");
    }
    let mut client = app.connect().await;
    let dump = tokio::time::timeout(Duration::from_secs(60), client.dump(v1::DumpRequest {}))
        .await
        .expect("the dump is answered")
        .expect("the dump call succeeds")
        .into_inner();
    // Long enough after the dump that a parent lagging now was stopped by it.
    let settled = Instant::now() + LAGGING_AFTER + Duration::from_secs(1);
    loop {
        let Some(p) = next(progress) else {
            return Err(format!(
                "frozen: no progress for {SILENCE:?} after the dump"
            ));
        };
        if p.at < settled {
            continue;
        }
        return if p.lagging == 0 && p.rounds > before.rounds {
            Ok(dump)
        } else {
            Err(format!(
                "stranded: {p:?} long after the dump, {before:?} before it"
            ))
        };
    }
}

/// Runs `example` with `parents` [`RUNS`] times, one dump each, and returns what went
/// wrong (run, outcome) and the dumps.
async fn dumps_of(example: &str, parents: usize, load: bool) -> (Vec<String>, Vec<v1::Dump>) {
    let mut harmed = Vec::new();
    let mut dumps = Vec::new();
    for run in 0..RUNS {
        let _busy = load.then(|| BusyThreads::start(2));
        let (app, progress) = start(example, parents, load);
        match dump_and_watch(&app, &progress).await {
            Ok(dump) => dumps.push(dump),
            Err(harm) => harmed.push(format!("run {run}: {harm}")),
        }
    }
    let pauses: Vec<String> = dumps
        .iter()
        .filter(|d| d.skipped.is_empty())
        .map(|d| format!("{:.1}", d.pause_ns as f64 / 1e6))
        .collect();
    // For docs/performance.md: what the dumps taken held the app for, in ms.
    eprintln!("{example} with {parents} parents: pauses (ms) {pauses:?}");
    (harmed, dumps)
}

/// A dump of a multi-thread runtime whose run queues are deep (256 parents on 1–2 ms
/// timers, on a CPU shared with busy threads) must never freeze it: tokio's dump cannot
/// finish there, so the probe declines it and says why, in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_of_a_loaded_busy_runtime_never_freezes_it() {
    let (harmed, dumps) = dumps_of("fan_out", 256, true).await;
    assert!(harmed.is_empty(), "{} of {RUNS}: {harmed:#?}", harmed.len());
    for dump in &dumps {
        assert!(
            dump.skipped.contains("run queues") && dump.skipped.contains("current-thread"),
            "the dump is declined saying why and how to get chains anyway: {dump:?}"
        );
    }
}

/// Whether `dump` places a task in `fan_out`'s code.
fn reaches_fan_out(dump: &v1::Dump) -> bool {
    dump.skipped.is_empty()
        && dump.leaves.iter().any(|leaf| {
            leaf.frames
                .iter()
                .any(|&f| dump.frames[f as usize].location.contains("src/fan_out.rs"))
        })
}

/// A dump the probe takes of a busy multi-thread runtime small enough for it: children
/// driven through `FuturesUnordered` and `join_all`, woken or brand new as the dump
/// re-polls them, must all still complete, and the runtime keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_of_sub_executors_complete_after_a_dump_of_a_multi_thread_runtime() {
    let (harmed, dumps) = dumps_of("fan_out", 16, true).await;
    assert!(harmed.is_empty(), "{} of {RUNS}: {harmed:#?}", harmed.len());
    let taken = dumps.iter().filter(|d| reaches_fan_out(d)).count();
    assert!(taken > RUNS / 2, "most dumps are taken: {dumps:#?}");
}

/// The same on a current-thread runtime, which tokio dumps from inside, at a moment its
/// run queue is empty (a queued task would run its code inside the dump).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_of_sub_executors_complete_after_a_dump_of_a_current_thread_runtime() {
    let (harmed, dumps) = dumps_of("fan_out_current_thread", 16, true).await;
    assert!(harmed.is_empty(), "{} of {RUNS}: {harmed:#?}", harmed.len());
    let taken = dumps.iter().filter(|d| reaches_fan_out(d)).count();
    assert!(taken > RUNS / 2, "most dumps are taken: {dumps:#?}");
}

/// A current-thread runtime whose run queue is never empty (256 parents on a CPU shared
/// with busy threads) is left alone, and the dump says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_current_thread_runtime_never_idle_is_not_dumped_and_says_why() {
    let (harmed, dumps) = dumps_of("fan_out_current_thread", 256, true).await;
    assert!(harmed.is_empty(), "{} of {RUNS}: {harmed:#?}", harmed.len());
    for dump in dumps.iter().filter(|d| !d.skipped.is_empty()) {
        assert!(
            dump.skipped.contains("always had tasks waiting to run"),
            "{dump:?}"
        );
    }
}

/// A busy service that returns from `main` with tasks still running (so the probe dumps it
/// before shutdown) must exit, every time.
#[test]
fn a_busy_service_exits_after_main_returns() {
    let mut hung = Vec::new();
    for run in 0..RUNS {
        let mut app = Running::spawn(command("churn_at_exit").stdout(Stdio::null()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while app.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if app.exited().is_none() {
            hung.push(run);
        }
    }
    assert!(
        hung.is_empty(),
        "{} of {RUNS} hung: runs {hung:?}",
        hung.len()
    );
}
