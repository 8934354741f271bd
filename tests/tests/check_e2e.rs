//! `taskscope check` end to end: the real binary runs the real example programs of
//! `crates/taskscope-examples` (each with one fault, marked `// FAULT: <kind>` on the line
//! of its spawn call) and must report exactly that fault at exactly that spawn location.
//!
//! The binaries are found (and built when missing) as `taskscope_e2e::build` says; the
//! nested `cargo test` here uses the same target directory and `--workspace`, for the same
//! reason.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use taskscope_api::recording::Reader;
use taskscope_api::v1;
use taskscope_e2e::build::{binaries, build_settings};
use taskscope_e2e::check::{
    assert_clean_pass, assert_single_error, check, check_example, findings,
};
use taskscope_e2e::{
    Running, cargo, command, example, fault_location, first_line_of, free_port, location_of_line,
    marked_line, taskscope, wait_until, workspace_root,
};

/// A service written the usual way (its own logging, `Result` from `main`, `JoinSet`,
/// `select!` with timeouts, `spawn_blocking`, a panic caught through its `JoinHandle`, a
/// graceful shutdown), on both routes, under `RUST_BACKTRACE=1`: never an error, run
/// after run. Its one finding is the caught panic, a warning.
#[test]
fn a_healthy_service_passes_every_time_on_both_routes() {
    for run in 0..10 {
        let name = if run % 2 == 0 {
            "service"
        } else {
            "service_layer"
        };
        let mut command = Command::new(example(name));
        command.env("SERVICE_CLIENTS", "3");
        let checked = check(&[], &mut command);
        assert_eq!(checked.status, 0, "run {run}, {name}: {:#}", checked.report);
        let kinds: Vec<_> = findings(&checked)
            .iter()
            .map(|f| (f["kind"].as_str().unwrap(), f["severity"].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [("panic", "warning")],
            "run {run}, {name}: {:#}",
            checked.report
        );
    }
}

#[test]
fn a_healthy_program_passes_with_no_findings() {
    assert_clean_pass(&check_example("healthy", &[]));
}

#[test]
fn an_aborted_task_and_nested_tasks_are_not_findings() {
    assert_clean_pass(&check_example("aborted", &[]));
    assert_clean_pass(&check_example("nested", &[]));
}

#[test]
fn a_blocking_sleep_in_async_code_is_a_stall_at_its_spawn_call() {
    let checked = check_example("blocking_sleep", &[]);
    let expected = fault_location("src/bin/blocking_sleep.rs", "stall");
    let finding = assert_single_error(&checked, "stall", &expected);
    // The example sleeps 600 ms; only a lower bound is certain.
    assert!(
        finding["duration_ms"].as_f64().unwrap() >= 500.0,
        "{finding:#}"
    );
    assert!(!finding["thread"].as_str().unwrap().is_empty());
    // When the probe could capture the stalled thread's stack, it shows where the example's
    // own code made the blocking call.
    if let Some(frames) = finding["backtrace"].as_array().filter(|f| !f.is_empty()) {
        let own = frames
            .iter()
            .find(|f| {
                f["location"]
                    .as_str()
                    .is_some_and(|l| l.contains("src/bin/blocking_sleep.rs:"))
            })
            .unwrap_or_else(|| panic!("no frame in the example: {finding:#}"));
        assert!(
            own["function"]
                .as_str()
                .unwrap()
                .contains("load_config_slowly"),
            "{finding:#}"
        );
    }
}

#[test]
fn a_cpu_loop_that_never_yields_is_a_stall_at_its_spawn_call() {
    let checked = check_example("cpu_loop", &[]);
    let expected = fault_location("src/bin/cpu_loop.rs", "stall");
    assert_single_error(&checked, "stall", &expected);
}

#[test]
fn a_future_that_drops_its_waker_is_a_lost_waker_at_its_spawn_call() {
    let checked = check_example("lost_waker", &[]);
    let expected = fault_location("src/bin/lost_waker.rs", "lost_waker");
    assert_single_error(&checked, "lost_waker", &expected);
}

#[test]
fn a_task_left_running_when_main_returns_is_alive_at_shutdown() {
    let checked = check_example("leak_at_shutdown", &[]);
    let expected = fault_location("src/bin/leak_at_shutdown.rs", "alive_at_shutdown");
    assert_single_error(&checked, "alive_at_shutdown", &expected);
}

#[test]
fn a_panicking_task_is_a_warning_unless_panics_fail() {
    let checked = check_example("panicking", &[]);
    assert_eq!(checked.status, 0, "{:#}", checked.report);
    assert_eq!(checked.report["verdict"], "pass");
    let [finding] = findings(&checked).as_slice() else {
        panic!("{:#}", checked.report)
    };
    assert_eq!(finding["kind"], "panic");
    assert_eq!(finding["severity"], "warning");
    assert_eq!(
        finding["spawn_location"],
        fault_location("src/bin/panicking.rs", "panic").to_string()
    );
    assert!(
        finding["panic_message"].as_str().unwrap().contains("boom"),
        "{finding:#}"
    );

    let strict = check_example("panicking", &["--fail-on", "panic"]);
    assert_eq!(strict.status, 1);
    assert_eq!(findings(&strict)[0]["severity"], "error");
}

/// The false positives tokio-console's lost-waker lint is known for: tasks parked on a
/// channel, timer, `Notify`, `select!`, `JoinSet`, lock or socket when the runtime shuts
/// down hold a waker, so they are alive at shutdown, never lost wakers. The only lost
/// waker there is real: the `JoinSet` child awaiting `std::future::pending()`, which
/// nothing can ever wake.
#[test]
fn tasks_waiting_on_tokio_primitives_at_shutdown_are_not_lost_wakers() {
    let checked = check_example("waiting_at_shutdown", &[]);
    let source = "src/bin/waiting_at_shutdown.rs";
    let lost: Vec<&Value> = findings(&checked)
        .iter()
        .filter(|f| f["kind"] == "lost_waker")
        .collect();
    let pending = location_of_line(source, "std::future::pending", "spawn").to_string();
    assert!(
        lost.iter().all(|f| f["spawn_location"] == pending.as_str()),
        "only the pending() child at {pending} may be a lost waker: {lost:#?}"
    );
    let alive: Vec<&str> = findings(&checked)
        .iter()
        .filter(|f| f["kind"] == "alive_at_shutdown")
        .filter_map(|f| f["task"]["name"].as_str())
        .collect();
    for waiter in [
        "mpsc", "oneshot", "notify", "sleep", "select", "joinset", "lock", "accept",
    ] {
        assert!(
            alive.contains(&waiter),
            "`{waiter}` should be alive at shutdown: {:#}",
            checked.report
        );
    }
}

#[test]
fn cargo_test_names_the_test_that_leaked_a_task() {
    binaries(); // built already, so the nested cargo only runs the tests
    let mut cargo_test = cargo();
    cargo_test
        .args(["test", "-q", "--workspace", "--test", "leaky_tests"])
        .args(build_settings());
    let checked = check(&[], &mut cargo_test);
    let expected = fault_location("tests/leaky_tests.rs", "alive_at_shutdown");
    let finding = assert_single_error(&checked, "alive_at_shutdown", &expected);
    assert_eq!(finding["test"], "leaks_a_background_task", "{finding:#}");
    assert_eq!(checked.report["command"][1], "test");
}

#[test]
fn the_leaky_test_binary_run_directly_names_the_test_too() {
    let mut tests = Command::new(example("leaky_tests"));
    tests.arg("--quiet");
    let checked = check(&[], &mut tests);
    let expected = fault_location("tests/leaky_tests.rs", "alive_at_shutdown");
    let finding = assert_single_error(&checked, "alive_at_shutdown", &expected);
    assert_eq!(finding["test"], "leaks_a_background_task");
}

/// One test of `server_per_test`, run directly.
fn server_test(name: &str) -> Command {
    let mut tests = Command::new(example("server_per_test"));
    tests.args(["--quiet", "--exact", name]);
    tests
}

#[test]
fn a_test_that_leaks_a_server_is_one_finding_at_its_spawn_call_with_the_servers_tasks_folded_in() {
    let checked = check(&[], &mut server_test("greets_three_clients"));
    let expected = fault_location("tests/server_per_test.rs", "alive_at_shutdown");
    let finding = assert_single_error(&checked, "alive_at_shutdown", &expected);
    assert_eq!(finding["test"], "greets_three_clients", "{finding:#}");
    assert_eq!(finding["count"], 1);
    let site = |marker| location_of_line("tests/greeter/mod.rs", marker, "spawn").to_string();
    assert_eq!(
        finding["descendants"],
        serde_json::json!([
            {"spawn_location": site("// SITE: handler"), "count": 3},
            {"spawn_location": site("// SITE: purge"), "count": 1},
        ]),
        "{finding:#}"
    );
    let message = finding["message"].as_str().unwrap();
    assert!(
        message.contains("greets_three_clients") && message.contains("and 4 tasks it spawned"),
        "{message}"
    );
}

#[test]
fn an_allowance_for_a_leak_does_not_hide_a_stall_at_the_same_site() {
    let dir = tempfile::tempdir().unwrap();
    let allow_list = dir.path().join("taskscope.toml");
    std::fs::write(
        &allow_list,
        r#"
[[allow]]
kind = "alive_at_shutdown"
site = "tests/server_per_test.rs:*"
reason = "each test's server runs until the test binary exits"

[[allow]]
kind = "lost_waker"
site = "tests/greeter/*"
reason = "no longer happens"
"#,
    )
    .unwrap();
    let config = allow_list.to_str().unwrap();
    let test = "greets_after_a_slow_start";
    let checked = check(&["--config", config], &mut server_test(test));
    // The leak at the spawn call is accepted; the stall of the same task is not.
    let expected = fault_location("tests/server_per_test.rs", "stall");
    let finding = assert_single_error(&checked, "stall", &expected);
    assert_eq!(finding["test"], test, "{finding:#}");
    assert_eq!(checked.report["summary"]["allowed"], 1);
    let [unused] = checked.report["unused_allowances"]
        .as_array()
        .unwrap()
        .as_slice()
    else {
        panic!("{:#}", checked.report)
    };
    assert_eq!(unused["allowance"], "lost_waker@tests/greeter/*");
    assert_eq!(unused["severity"], "note");
    assert!(
        unused["origin"]
            .as_str()
            .unwrap()
            .ends_with("taskscope.toml:7")
    );

    // With stalls only warned about, the stale allowance alone fails the check when asked.
    let strict = check(
        &[
            "--config",
            config,
            "--warn-on",
            "stall",
            "--fail-on-unused-allow",
        ],
        &mut server_test(test),
    );
    assert_eq!(strict.status, 1, "{:#}", strict.report);
    assert_eq!(strict.report["unused_allowances"][0]["severity"], "error");
    let stderr = String::from_utf8_lossy(&strict.output.stderr);
    assert!(
        stderr.contains("error: the allowance `lost_waker@tests/greeter/*`"),
        "{stderr}"
    );
}

/// `check` runs programs on the tracing route (it tracks wakers); a recording made on the
/// hooks route, as `#[taskscope::test]` gives by default, is judged the same way.
#[test]
fn a_hooks_route_recording_names_the_test_that_leaked_a_task() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(example("leaky_hooks_tests"))
        .arg("--quiet")
        .env("TASKSCOPE_RECORD", dir.path())
        .env("TASKSCOPE_BIND", "off")
        .env_remove("TASKSCOPE_WAKERS")
        .env_remove("TASKSCOPE_ROUTE")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let report_path = dir.path().join("report.json");
    let output = Command::new(taskscope())
        .args(["check", "--format", "json", "--output"])
        .arg(&report_path)
        .arg("--recording")
        .arg(dir.path())
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let [finding] = report["findings"].as_array().unwrap().as_slice() else {
        panic!("expected one finding: {report:#}")
    };
    assert_eq!(finding["kind"], "alive_at_shutdown", "{finding:#}");
    let expected = fault_location("tests/leaky_hooks_tests.rs", "alive_at_shutdown");
    assert_eq!(
        finding["spawn_location"],
        expected.to_string(),
        "{finding:#}"
    );
    assert_eq!(
        finding["test"],
        "leaks_a_background_task_on_the_hooks_route"
    );
}

#[test]
fn a_command_that_fails_before_recording_anything_cannot_be_checked() {
    let mut tests = Command::new(example("leaky_tests"));
    tests.args([
        "--quiet",
        "--exact",
        "no_such_test",
        "--include-ignored",
        "--bogus-flag",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(taskscope())
        .args(["check", "--output"])
        .arg(dir.path().join("report.txt"))
        .arg("--")
        .arg(tests.get_program())
        .args(tests.get_args())
        .output()
        .unwrap();
    // libtest refuses the flag before any runtime starts: nothing is recorded, so taskscope
    // cannot check and says so, naming the command's own failure.
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("exited with status"), "{stderr}");
}

#[test]
fn a_failing_command_fails_the_check_even_without_findings() {
    let script = format!("'{}' && exit 3", example("healthy").display());
    let checked = check(&[], Command::new("sh").args(["-c", &script]));
    assert_eq!(checked.status, 1, "{:#}", checked.report);
    assert_eq!(checked.report["verdict"], "fail");
    assert_eq!(checked.report["exit_code"], 3);
    assert_eq!(findings(&checked).len(), 0);
    let stderr = String::from_utf8_lossy(&checked.output.stderr);
    assert!(stderr.contains("exited with status 3"), "{stderr}");
}

/// A process killed with SIGKILL leaves a recording cut at any point; `check` judges what
/// it holds and says it was cut.
#[test]
fn a_recording_cut_by_sigkill_is_judged_on_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut forever = Command::new(example("forever"))
        .env("TASKSCOPE_RECORD", dir.path())
        .env("TASKSCOPE_BIND", "off")
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (generously) until the recording holds a finished stall, then kill.
    let deadline = Instant::now() + Duration::from_secs(60);
    let recorded_stall = loop {
        if has_ended_stall(dir.path()) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    forever.kill().unwrap();
    forever.wait().unwrap();
    assert!(
        recorded_stall,
        "`forever` recorded no stall within a minute"
    );

    let output = Command::new(taskscope())
        .args(["check", "--recording"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains("error[stall] crates/taskscope-examples/src/bin/forever.rs:"),
        "{report}"
    );
    assert!(report.contains("recording was cut"), "{report}");
}

/// Starts the `forever` example serving its probe on `bind`; stopped when dropped.
fn start_forever(bind: &str) -> Running {
    let mut forever = command("forever");
    forever.env("TASKSCOPE_BIND", bind).stdout(Stdio::null());
    Running::spawn(&mut forever)
}

#[test]
fn attaching_to_a_running_service_judges_what_happened_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("probe.sock");
    let _service = start_forever(&format!("unix:{}", socket.display()));
    wait_until("the probe's socket", || socket.exists());
    // `forever` stalls for 150 ms once a second: a 4 s window sees several.
    let output = Command::new(taskscope())
        .args(["check", "--format", "json", "--duration", "4s", "--attach"])
        .arg(format!("unix:{}", socket.display()))
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    assert!(report["command"].is_null() && report["exit_code"].is_null());
    let found = findings_of(&report);
    let [finding] = found.as_slice() else {
        panic!("expected only the periodic stall: {report:#}")
    };
    assert_eq!(finding["kind"], "stall");
    let expected = location_of_line(
        "src/bin/forever.rs",
        "std::thread::sleep(Duration::from_millis(150))",
        "spawn",
    )
    .to_string();
    assert_eq!(finding["spawn_location"], expected.as_str());
}

/// Connections to the Unix socket at `path`, the listener's included (`/proc/net/unix`
/// lists the accepted side under the listener's path).
fn unix_socket_entries(path: &Path) -> usize {
    let path = path.to_string_lossy();
    std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .filter(|line| line.ends_with(path.as_ref()))
        .count()
}

/// A signal during an --attach window ends it early with a report of what was seen,
/// verdict "interrupted" and exit status 128 + the signal.
#[test]
fn a_signal_during_the_attach_window_gives_an_interrupted_report() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("probe.sock");
    let _service = start_forever(&format!("unix:{}", socket.display()));
    wait_until("the probe's socket", || socket.exists());
    let checker = Command::new(taskscope())
        .args(["check", "--format", "json", "--duration", "10m", "--attach"])
        .arg(format!("unix:{}", socket.display()))
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("check to connect", || unix_socket_entries(&socket) >= 2);
    let pid = libc::pid_t::try_from(checker.id()).unwrap();
    // SAFETY: a plain syscall on our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let output = checker.wait_with_output().unwrap();
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(output.status.code(), Some(128 + libc::SIGHUP), "{report:#}");
    assert_eq!(report["verdict"], "interrupted");
    assert_eq!(report["processes"][0]["program"], "forever", "{report:#}");
}

#[test]
fn events_streams_a_live_probe_as_json_lines() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let _service = start_forever(&address);
    wait_until("the probe's port", || {
        std::net::TcpStream::connect(&address).is_ok()
    });
    let (first, _) = first_line_of(Command::new(taskscope()).args(["events", &address]));
    let update: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(update["process"]["program"], "forever", "{update:#}");
    assert!(
        ["SNAPSHOT_FIRST", "SNAPSHOT_ONLY"].contains(&update["snapshot"].as_str().unwrap()),
        "a watch starts with the current state: {update:#}"
    );
}

/// `check` passes SIGTERM on to the command, then still judges and reports what the
/// command recorded before it died, as an interrupted run.
#[test]
fn a_terminated_check_stops_the_command_and_still_reports() {
    // `check` makes its recording directory under TMPDIR: use one this test can watch.
    let tmp = tempfile::tempdir().unwrap();
    let report_path = tmp.path().join("report.json");
    let checker = Command::new(taskscope())
        .args(["check", "--format", "json", "--output"])
        .arg(&report_path)
        .arg("--")
        .arg(example("forever"))
        .env("TMPDIR", tmp.path())
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("a recorded stall", || {
        std::fs::read_dir(tmp.path())
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| has_ended_stall(&entry.path()))
    });
    let pid = libc::pid_t::try_from(checker.id()).unwrap();
    // SAFETY: a plain syscall on our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let output = checker.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(128 + libc::SIGTERM), "{stderr}");
    assert!(stderr.contains("INTERRUPTED"), "{stderr}");
    assert!(stderr.contains("stopped by signal 15"), "{stderr}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(report["verdict"], "interrupted");
    assert!(report["exit_code"].is_null());
    assert!(
        findings_of(&report).iter().any(|f| f["kind"] == "stall"),
        "{report:#}"
    );
}

fn findings_of(report: &Value) -> Vec<Value> {
    report["findings"].as_array().unwrap().clone()
}

fn has_ended_stall(dir: &Path) -> bool {
    let Some(Ok(entry)) = std::fs::read_dir(dir)
        .ok()
        .and_then(|mut entries| entries.next())
    else {
        return false;
    };
    let Ok(reader) = Reader::open(entry.path()) else {
        return false;
    };
    reader.filter_map(Result::ok).any(|update| {
        update
            .stalls
            .iter()
            .any(|stall| stall.phase == v1::StallPhase::Ended as i32)
    })
}

/// The `file:line` of the line an example marks `// BLOCKS` (where its stalled task makes
/// the blocking call).
fn blocking_line(source: &str) -> String {
    let line = marked_line(source, "BLOCKS");
    format!("crates/taskscope-examples/{source}:{line}")
}

/// Checks an example whose one fault is a stall and asserts what its stack shows: the
/// innermost shown frame is the blocking `call`, a frame of `function` sits at the marked
/// line, the message says blocked or busy, and the GitHub annotation points at that line.
fn assert_stall_stack(example: &str, function: &str, call: Option<&str>, busy: bool) {
    let source = format!("src/bin/{example}.rs");
    let checked = check_example(example, &[]);
    let finding = assert_single_error(&checked, "stall", &fault_location(&source, "stall"));
    let frames = finding["backtrace"]
        .as_array()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| panic!("no backtrace: {finding:#}"));
    if let Some(call) = call {
        let innermost = frames[0]["function"].as_str().unwrap();
        assert!(
            innermost.to_lowercase().contains(call),
            "innermost shown frame should be the blocking {call}: {finding:#}"
        );
    }
    let marked = blocking_line(&source);
    let own = frames
        .iter()
        .find(|f| f["function"].as_str().unwrap().ends_with(function))
        .unwrap_or_else(|| panic!("no {function} frame: {finding:#}"));
    let location = own["location"].as_str().unwrap();
    if !busy {
        // Debug info records absolute paths; the spawn location is workspace-relative.
        assert!(
            location.contains(&format!("{marked}:")) || location.ends_with(&marked),
            "{function} should be at {marked}, is at {location}"
        );
    }
    let message = finding["message"].as_str().unwrap();
    let verdict = if busy { "busy" } else { "blocked in" };
    assert!(message.contains(verdict), "{message}");

    // The annotation on the pull request points at the user's line, not the spawn call.
    let github = Command::new(taskscope())
        .args(["check", "--format", "github", "--", &example_path(example)])
        .current_dir(workspace_root())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let annotations = String::from_utf8_lossy(&github.stdout);
    let (file, line) = marked.rsplit_once(':').unwrap();
    if !busy {
        assert!(
            annotations.contains(&format!("file={file},line={line}")),
            "{annotations}"
        );
    }
}

fn example_path(name: &str) -> String {
    example(name).to_string_lossy().into_owned()
}

#[test]
fn a_stall_stack_names_the_sleeping_helper_its_line_and_the_sleep() {
    assert_stall_stack("blocking_sleep", "load_config_slowly", Some("sleep"), false);
}

#[test]
fn a_stall_stack_names_the_blocking_file_read_and_its_caller() {
    assert_stall_stack("fifo_read", "read_settings", Some("read"), false);
}

#[test]
fn a_stall_stack_names_the_contended_mutex_lock_and_its_caller() {
    assert_stall_stack("mutex_wait", "bump", Some("lock"), false);
}

#[test]
fn a_stall_stack_of_a_cpu_loop_says_busy_and_names_the_loop() {
    assert_stall_stack("cpu_loop", "crunch", None, true);
}

/// Ctrl-C typed at a real terminal: `check` (in the terminal's foreground) forwards it to
/// the command's process group, and reports the run as interrupted.
#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn ctrl_c_at_a_terminal_stops_the_command_and_reports_an_interrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let tmux = taskscope_e2e::tmux::Tmux::start(120, 30);
    tmux.run(&format!(
        "{} check -- bash -c 'touch {}; sleep 1000'; echo status=$?",
        taskscope().display(),
        marker.display()
    ));
    wait_until("the command to start", || marker.exists());
    tmux.keys(&["C-c"]);
    // The typed command shows `status=$?`: only `status=` and a digit is the status.
    let screen = tmux.wait_for("check's exit status", |s| {
        s.match_indices("status=")
            .any(|(at, _)| s[at + "status=".len()..].starts_with(|c: char| c.is_ascii_digit()))
    });
    assert!(screen.contains("INTERRUPTED"), "{screen}");
    assert!(screen.contains("status=130"), "{screen}");
}

/// `taskscope check -- EXAMPLE` with the text report: (status, stdout, stderr).
fn check_text(name: &str) -> (Option<i32>, String, String) {
    let output = Command::new(taskscope())
        .args(["check", "--"])
        .arg(example(name))
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `init()` called from a spawned task cannot watch the body of `main` (another thread):
/// the program says so once on stderr, with the fix, and the report in a note naming the
/// call. Called from the body itself, the body is watched: neither says anything.
#[test]
fn a_body_the_probe_cannot_watch_is_named_on_stderr_and_in_the_report() {
    let (status, report, stderr) = check_text("init_in_task");
    assert_eq!(status, Some(0), "{report}\n{stderr}");
    let call = location_of_line(
        "src/bin/init_in_task.rs",
        "async { taskscope::init() }",
        "taskscope",
    )
    .to_string();
    assert!(
        report.contains(&format!(
            "taskscope::init() was called at {call}, inside a runtime tokio was already running, \
             from where the probe cannot watch the body"
        )),
        "{report}"
    );
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("taskscope: warning:"))
        .collect();
    let [warning] = warnings.as_slice() else {
        panic!("one warning expected: {stderr}")
    };
    assert!(warning.contains(&call), "{warning}");
    assert!(warning.contains("#[taskscope::main]"), "{warning}");
    for watched in ["blocking_sleep", "body_idle"] {
        let (_, report, stderr) = check_text(watched);
        assert!(!report.contains("cannot watch"), "{report}");
        assert!(
            !stderr.contains("taskscope"),
            "nothing in the program's output: {stderr}"
        );
    }
    let (_, report, _) = check_text("main_stall");
    assert!(!report.contains("cannot watch"), "{report}");
}

/// The body of `#[tokio::main]` blocks right after calling `taskscope::init()`: tokio was
/// polling it before the probe existed, so the probe watches its thread from outside. The
/// stall is reported at the `init()` call, as the task `main`, with the sleep's line in its
/// stack, on both runtime flavors.
#[test]
fn a_blocking_sleep_in_the_body_of_tokio_main_is_a_stall_at_the_init_call() {
    for example in ["body_stall", "body_stall_current_thread"] {
        let source = format!("src/bin/{example}.rs");
        let call = location_of_line(&source, "// FAULT: stall", "taskscope");
        let checked = check_example(example, &[]);
        let finding = assert_single_error(&checked, "stall", &call);
        assert_eq!(finding["task"]["name"], "main", "{finding:#}");
        let duration = finding["duration_ms"].as_f64().unwrap();
        assert!(duration >= 300.0, "the 800 ms sleep: {finding:#}");
        let frames = finding["backtrace"]
            .as_array()
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| panic!("no backtrace: {finding:#}"));
        let innermost = frames[0]["function"].as_str().unwrap();
        assert!(innermost.contains("sleep"), "{finding:#}");
        let marked = blocking_line(&source);
        assert!(
            frames.iter().any(|f| {
                f["function"].as_str().unwrap().contains("main")
                    && f["location"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("{marked}:"))
            }),
            "a frame of main at {marked}: {finding:#}"
        );
        let message = finding["message"].as_str().unwrap();
        assert!(message.contains("blocked in"), "{message}");
    }
}

/// A `#[tokio::main]` body that calls `taskscope::init()` and then only awaits (a long
/// timer, a channel) is parked in the runtime: watched from outside, no stall.
#[test]
fn an_idle_body_of_tokio_main_is_no_stall() {
    for example in ["body_idle", "body_idle_current_thread"] {
        assert_clean_pass(&check_example(example, &[]));
    }
}

/// A 25 ms poll that six busy threads on its CPU stretch to about 200 ms is the machine's
/// doing: no stall finding (a note says why), while a CPU loop stays a stall.
#[test]
fn a_poll_held_only_by_an_overloaded_machine_is_not_a_stall() {
    for _ in 0..3 {
        let (status, report, _) = check_text("starved");
        assert_eq!(status, Some(0), "{report}");
        assert!(!report.contains("error[stall]"), "{report}");
        assert!(
            report.contains("only because the thread was waiting for a CPU"),
            "{report}"
        );
    }
}

/// `taskscope check -- starved POLL_CPU_MS 6 BUSY_CPU_MS` with the text report: the poll
/// computes for `poll_cpu_ms` of CPU time while six busy threads share its CPU for their
/// first `busy_cpu_ms` each, then stop. The poll waits for the CPU at its start and much
/// less at its end, so the share of waiting seen late in the poll is far from the share
/// over the whole of it.
fn check_starved_unevenly(poll_cpu_ms: u64, busy_cpu_ms: u64) -> (Option<i32>, String) {
    let output = Command::new(taskscope())
        .args(["check", "--"])
        .arg(example("starved"))
        .args([poll_cpu_ms, 6, busy_cpu_ms].map(|n| n.to_string()))
        .current_dir(workspace_root())
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), report)
}

/// Polls whose CPU time sits 20% below and 50% above the 100 ms threshold, on a CPU shared
/// with busy threads for the first part of the poll only: the wait is measured over the
/// whole poll, so the verdict is the same every run, a note below the threshold and a
/// stall above it. (Linux counts a wait only once it is over, so a reading taken during one
/// is off by up to that wait: with seven threads on one CPU, tens of milliseconds.)
#[test]
fn a_poll_near_the_threshold_gets_the_same_verdict_every_run() {
    for run in 0..20 {
        let (status, below) = check_starved_unevenly(80, 10);
        assert_eq!(status, Some(0), "run {run}: {below}");
        assert!(!below.contains("error[stall]"), "run {run}: {below}");
        assert!(
            below.contains("only because the thread was waiting for a CPU"),
            "run {run}: {below}"
        );
        let (status, above) = check_starved_unevenly(150, 15);
        assert_eq!(status, Some(1), "run {run}: {above}");
        assert_eq!(
            above.matches("error[stall]").count(),
            1,
            "run {run}: {above}"
        );
    }
}

/// A `#[taskscope::test]` that spawns 25,000 tasks before its first `.await`, in a debug
/// build: the probe's spawn hook runs 25,000 times inside that first poll, for a few
/// microseconds each unoptimised, and that time is the probe's, not the test's. Run after
/// run, no stall.
#[test]
fn a_test_spawning_25000_tasks_before_its_first_await_passes_in_a_debug_build() {
    for run in 0..10 {
        let mut tests = Command::new(example("spawn_storm_tests"));
        tests.arg("--quiet");
        let checked = check(&[], &mut tests);
        assert_eq!(checked.status, 0, "run {run}: {:#}", checked.report);
        assert!(
            findings(&checked).is_empty(),
            "run {run}: {:#}",
            checked.report
        );
        assert_eq!(checked.report["summary"]["tasks"], 25_001);
    }
}
