//! Where leaked tasks wait, end to end: `taskscope check` runs example programs whose
//! tasks are parked at known `.await`s (each marked `// AWAIT: <function>`) and must name
//! that exact line in `waiting_at`; and a graceful shutdown, whose tasks were told to stop
//! as `main` returned, must pass every time while a forgotten ticker fails every time.

use std::process::Command;

use serde_json::Value;
use taskscope_e2e::check::{check, check_example, findings};
use taskscope_e2e::{example, fault_location, location_of_line, taskscope, workspace_root};

/// `file:line:col` of the `.await` on the line marked `// AWAIT: <function>`.
fn await_location(source: &str, function: &str) -> String {
    location_of_line(source, &format!("// AWAIT: {function}"), "await").to_string()
}

/// The leak finding whose task waited in `function`, with its `waiting_at`.
fn waiting_at<'a>(findings: &'a [Value], function: &str) -> (&'a Value, Vec<(String, String)>) {
    findings
        .iter()
        .find_map(|finding| {
            let frames: Vec<(String, String)> = finding["waiting_at"]
                .as_array()?
                .iter()
                .map(|f| {
                    let text = |key: &str| f[key].as_str().unwrap_or_default().to_owned();
                    (text("function"), text("location"))
                })
                .collect();
            frames
                .iter()
                .any(|(name, _)| name.contains(&format!("::{function}::")))
                .then_some((finding, frames))
        })
        .unwrap_or_else(|| panic!("no finding waiting in `{function}`: {findings:#?}"))
}

/// Asserts that the user frame of `function` in `frames` is at `expected` (a path relative
/// to the workspace; the debug info holds it absolute).
fn assert_waits_at(frames: &[(String, String)], function: &str, expected: &str) {
    let (_, location) = frames
        .iter()
        .find(|(name, _)| name.contains(&format!("::{function}::")))
        .unwrap_or_else(|| panic!("no frame of `{function}` in {frames:#?}"));
    assert!(
        location.ends_with(expected),
        "`{function}` waits at {location}, expected {expected}"
    );
}

#[test]
fn every_leaked_task_says_at_which_await_it_waits() {
    let checked = check_example("parked", &[]);
    assert_eq!(checked.status, 1, "{:#}", checked.report);
    let findings = findings(&checked);
    let source = "src/bin/parked.rs";
    let cases = [
        // A channel whose sender is never dropped: parked in the channel's `recv`.
        ("drain", "Receiver<T>::recv"),
        // A `Notify` nobody notifies.
        ("wait_for_go", "Notified"),
        // The `JoinHandle` of a task that is itself stuck.
        ("supervise", "JoinHandle"),
        // Two tasks awaiting each other's `JoinHandle`.
        ("first_half", "JoinHandle"),
        ("second_half", "JoinHandle"),
    ];
    for (function, awaited) in cases {
        let (finding, frames) = waiting_at(findings, function);
        assert_eq!(finding["kind"], "alive_at_shutdown", "{finding:#}");
        assert_waits_at(&frames, function, &await_location(source, function));
        // Innermost first: the library call awaited, then the user's `.await`.
        assert!(
            frames[0].0.contains(awaited.split('<').next().unwrap()),
            "`{function}` should be parked in {awaited}: {frames:#?}"
        );
    }
}

/// Each finding's text names the `.await`, and a GitHub annotation points at it.
#[test]
fn reports_point_at_the_await_line() {
    let output = Command::new(taskscope())
        .args(["check", "--format", "github", "--"])
        .arg(example("parked"))
        .current_dir(workspace_root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let location = await_location("src/bin/parked.rs", "wait_for_go");
    let (file, line_col) = location.split_once(".rs:").unwrap();
    let line = line_col.split(':').next().unwrap();
    let expected = format!("file={file}.rs,line={line},");
    assert!(
        text.lines()
            .any(|l| l.starts_with("::error") && l.contains(&expected)),
        "no annotation at {location}:\n{text}"
    );
    assert!(
        text.contains("in `parked::wait_for_go` (on `tokio::sync::notify::Notified`)"),
        "{text}"
    );
}

/// A current-thread runtime can only be dumped from inside: the dump at shutdown is.
#[test]
fn a_current_thread_runtime_gives_await_chains_too() {
    let checked = check_example("parked_current_thread", &[]);
    let (_, frames) = waiting_at(findings(&checked), "wait_for_go");
    let source = "src/bin/parked_current_thread.rs";
    assert_waits_at(
        &frames,
        "wait_for_go",
        &await_location(source, "wait_for_go"),
    );
}

/// Tasks told to stop as `main` returns were on their way out: never a finding, run
/// after run; a ticker nobody stops is a leak, run after run.
#[test]
fn a_graceful_shutdown_always_passes_and_a_forgotten_ticker_always_fails() {
    let ticker = fault_location("src/bin/graceful_shutdown.rs", "alive_at_shutdown").to_string();
    for run in 0..20 {
        let graceful = check(&[], &mut Command::new(example("graceful_shutdown")));
        assert_eq!(graceful.status, 0, "run {run}: {:#}", graceful.report);
        assert_eq!(
            findings(&graceful).len(),
            0,
            "run {run}: {:#}",
            graceful.report
        );

        let mut leaky = Command::new(example("graceful_shutdown"));
        leaky.env("FORGOTTEN_TICKER", "1");
        let leaky = check(&[], &mut leaky);
        assert_eq!(leaky.status, 1, "run {run}: {:#}", leaky.report);
        let [finding] = findings(&leaky).as_slice() else {
            panic!("run {run}: one finding expected: {:#}", leaky.report)
        };
        assert_eq!(finding["kind"], "alive_at_shutdown");
        assert_eq!(finding["spawn_location"], ticker.as_str(), "run {run}");
    }
}

/// The leak finding of the task named `name`.
fn named<'a>(findings: &'a [Value], name: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["task"]["name"] == name)
        .unwrap_or_else(|| panic!("no finding of task `{name}`: {findings:#?}"))
}

/// `file:line:` of the line marked `// AWAIT: <function>`, for chains whose user frame is
/// `call` on that line rather than its `.await`.
fn await_line(source: &str, function: &str, call: &str) -> String {
    let at = location_of_line(source, &format!("// AWAIT: {function}"), call).to_string();
    let (file_line, _column) = at.rsplit_once(':').unwrap();
    format!("{file_line}:")
}

/// On the `init()` route under `#[tokio::main]`, where `check` also tracks wakers, a
/// debug build's leaks say where they wait (from the dumps taken as tasks go idle), a lost
/// waker carries its chain too, and the tasks a dump reached but found parked on nothing
/// tokio marks (`TcpListener::accept`, a `JoinSet`) are told apart in the notes.
#[test]
fn on_the_init_route_leaks_and_lost_wakers_say_where_they_wait() {
    let checked = check_example("parked_init", &[]);
    assert_eq!(checked.status, 1, "{:#}", checked.report);
    let findings = findings(&checked);
    let source = "src/bin/parked_init.rs";

    let heartbeat = named(findings, "heartbeat");
    assert_eq!(heartbeat["kind"], "alive_at_shutdown", "{heartbeat:#}");
    let (_, frames) = waiting_at(std::slice::from_ref(heartbeat), "heartbeat");
    assert_waits_at(&frames, "heartbeat", &await_location(source, "heartbeat"));

    // Polled with a waker of its own, the timer holds nothing that wakes the task.
    let lost = named(findings, "peek_timer");
    assert_eq!(lost["kind"], "lost_waker", "{lost:#}");
    let line = await_line(source, "peek_timer", "poll");
    assert!(
        lost["waiting_at"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["location"].as_str().unwrap_or_default().contains(&line)),
        "the lost waker's chain should reach {line}: {lost:#}"
    );

    // `poll_accept` is marked by tokio's trace, at the listener's readiness.
    let polled = named(findings, "poll_accept_loop");
    assert_eq!(polled["kind"], "alive_at_shutdown", "{polled:#}");
    let line = await_line(source, "poll_accept_loop", "poll_fn");
    let frames = polled["waiting_at"].as_array().unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f["location"].as_str().unwrap_or_default().contains(&line)),
        "`poll_accept_loop` should wait at {line}: {polled:#}"
    );

    // `accept` is not: the dump reaches the task and finds no leaf, and the note says so.
    for name in ["accept_loop", "join_set"] {
        let finding = named(findings, name);
        assert_eq!(finding["kind"], "alive_at_shutdown", "{finding:#}");
        assert!(
            finding["waiting_at"]
                .as_array()
                .is_none_or(|frames| frames.is_empty()),
            "{finding:#}"
        );
    }
    // The notes are in the text report.
    let output = Command::new(taskscope())
        .args(["check", "--"])
        .arg(example("parked_init"))
        .current_dir(workspace_root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).replace('\n', " ");
    assert!(
        text.contains(
            "2 leaked task(s) have no await chain (where they waited): the dump \
                       reached them but found them parked on no future tokio's trace marks"
        ) && text.contains("TcpListener::accept"),
        "{text}"
    );
    assert!(!text.contains("no dump reached them"), "{text}");
}
