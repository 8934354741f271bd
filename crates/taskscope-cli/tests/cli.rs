//! The `taskscope` binary's surface: help, exit statuses, and what it says on bad input.
//! Recordings are built in the test with the recording writer, so no instrumented program
//! is needed here (see `check_e2e.rs` for those).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use taskscope_api::recording::Writer;
use taskscope_api::v1;

const MS: u64 = 1_000_000;

fn taskscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taskscope"))
        .args(args)
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .env("NO_COLOR", "1")
        .output()
        .expect("the taskscope binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn status(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

/// A recording of a process that ran one task at `src/main.rs:7:5` which stalled for
/// 250 ms, and (when `exited`) exited normally.
fn write_recording(path: &Path, exited: bool) {
    let process = v1::ProcessInfo {
        pid: 4242,
        program: "app".into(),
        instrumentation: v1::Instrumentation::Seen as i32,
        stall_threshold_ns: 100 * MS,
        waker_tracking: true,
        ..Default::default()
    };
    let first = v1::Update {
        now_ns: 1,
        process: Some(process),
        snapshot: v1::SnapshotMark::SnapshotOnly as i32,
        spawned: vec![v1::TaskSpawned {
            id: 1,
            kind: v1::TaskKind::Task as i32,
            location: Some(v1::Location {
                file: "src/main.rs".into(),
                line: 7,
                column: 5,
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let stalled = v1::Update {
        now_ns: 400 * MS,
        stalls: vec![v1::Stall {
            stall_id: 1,
            phase: v1::StallPhase::Ended as i32,
            task_id: 1,
            duration_ns: 250 * MS,
            ..Default::default()
        }],
        ended: vec![v1::TaskEnded {
            id: 1,
            outcome: v1::Outcome::Completed as i32,
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut writer = Writer::create(path).unwrap();
    writer.write(&[first, stalled]).unwrap();
    if exited {
        writer
            .write(&[v1::Update {
                now_ns: 500 * MS,
                process_exited: true,
                ..Default::default()
            }])
            .unwrap();
    }
}

fn temp_recording(exited: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app-4242.tsrec");
    write_recording(&path, exited);
    (dir, path)
}

#[test]
fn help_describes_every_command_with_examples() {
    let output = taskscope(&["--help"]);
    assert_eq!(status(&output), 0);
    assert!(stdout(&output).contains("check") && stdout(&output).contains("events"));
    let check = taskscope(&["check", "--help"]);
    assert_eq!(status(&check), 0);
    let help = stdout(&check);
    for flag in [
        "--attach",
        "--duration",
        "--recording",
        "--stall-threshold",
        "--fail-on",
        "--warn-on",
        "--allow",
        "--format",
        "--output",
        "TASKSCOPE_STALL_THRESHOLD",
        "--connect-timeout",
        "TASKSCOPE_CONNECT_TIMEOUT",
        "--kill-after",
        "TASKSCOPE_KILL_AFTER",
        "128+N",
        "taskscope check -- cargo test",
    ] {
        assert!(help.contains(flag), "`check --help` lacks {flag}:\n{help}");
    }
    for command in ["attach", "events"] {
        let help = stdout(&taskscope(&[command, "--help"]));
        assert!(
            help.contains("--connect-timeout") && help.contains("TASKSCOPE_CONNECT_TIMEOUT"),
            "`{command} --help` lacks the connect timeout:\n{help}"
        );
    }
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let output = taskscope(&["check", "--no-such-flag"]);
    assert_eq!(status(&output), 2);
    assert!(stderr(&output).contains("--no-such-flag"));
}

#[test]
fn check_without_anything_to_check_says_what_to_give() {
    let output = taskscope(&["check"]);
    assert_eq!(status(&output), 2);
    assert!(
        stderr(&output).contains("nothing to check"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_kind_in_both_fail_on_and_warn_on_is_refused() {
    let (_dir, path) = temp_recording(true);
    let path = path.to_str().unwrap();
    let output = taskscope(&[
        "check",
        "--fail-on",
        "panic",
        "--warn-on",
        "panic",
        "--recording",
        path,
    ]);
    assert_eq!(status(&output), 2);
    assert!(stderr(&output).contains("both --fail-on and --warn-on"));
}

#[test]
fn a_bad_duration_is_refused_with_an_example() {
    let output = taskscope(&["check", "--stall-threshold", "100", "--recording", "x"]);
    assert_eq!(status(&output), 2);
    assert!(stderr(&output).contains("100ms"), "{}", stderr(&output));
}

#[test]
fn a_missing_path_is_exit_2_with_the_path_named() {
    let output = taskscope(&["check", "--recording", "/no/such/recording.tsrec"]);
    assert_eq!(status(&output), 2);
    assert!(
        stderr(&output).contains("/no/such/recording.tsrec"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_garbage_file_is_exit_2_and_called_not_a_recording() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.tsrec");
    std::fs::write(&path, b"this is not a recording at all").unwrap();
    for args in [
        vec!["check", "--recording", path.to_str().unwrap()],
        vec!["events", path.to_str().unwrap()],
    ] {
        let output = taskscope(&args);
        assert_eq!(status(&output), 2, "{args:?}");
        assert!(
            stderr(&output).contains("not a taskscope recording"),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn an_empty_directory_has_no_recordings_to_judge() {
    let dir = tempfile::tempdir().unwrap();
    let output = taskscope(&["check", "--recording", dir.path().to_str().unwrap()]);
    assert_eq!(status(&output), 2);
    assert!(
        stderr(&output).contains("holds no .tsrec recordings"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn nothing_listening_is_exit_2_naming_the_address_and_the_fix() {
    // A port that was free a moment ago: connecting is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    for args in [
        vec!["check", "--attach", address.as_str(), "--duration", "1s"],
        vec!["events", address.as_str()],
    ] {
        let output = taskscope(&args);
        assert_eq!(status(&output), 2, "{args:?}");
        let message = stderr(&output);
        assert!(message.contains("nothing is listening on"), "{message}");
        assert!(
            message.contains("taskscope::init()") && message.contains(&address),
            "{message}"
        );
    }
}

/// Peers that accept a connection and then say nothing: a TCP listener and a Unix socket
/// listener that never read. Every client command gives up after `--connect-timeout`.
#[test]
fn a_peer_that_never_answers_is_exit_2_after_the_connect_timeout() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_address = tcp.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    let _unix = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let unix_address = format!("unix:{}", socket.display());
    for address in [&tcp_address, &unix_address] {
        for args in [
            vec!["check", "--attach", address, "--duration", "60s"],
            vec!["events", address],
            vec!["events", "--protocol", "taskscope", address],
        ] {
            let started = std::time::Instant::now();
            let mut args = args.clone();
            args.extend(["--connect-timeout", "1s"]);
            let output = taskscope(&args);
            assert_eq!(status(&output), 2, "{args:?}: {}", stderr(&output));
            let message = stderr(&output);
            assert!(
                message.contains("no answer from") && message.contains(address.as_str()),
                "{message}"
            );
            assert!(message.contains("--connect-timeout"), "{message}");
            // 1 s asked for; anything near the 60 s window means the timeout did not hold.
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{args:?}"
            );
        }
    }
}

/// A FIFO without a writer would block a plain open forever; it is refused at once, for
/// every command that reads recordings.
#[test]
fn a_fifo_is_refused_as_a_recording_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("app-4242.tsrec");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a plain syscall on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let fifo = fifo.to_str().unwrap();
    for args in [
        vec!["check", "--recording", fifo],
        vec!["events", fifo],
        vec!["replay", fifo],
    ] {
        let output = taskscope(&args);
        assert_eq!(status(&output), 2, "{args:?}");
        let message = stderr(&output);
        assert!(
            message.contains("is a FIFO") && message.contains("not a regular file"),
            "{message}"
        );
    }
}

#[test]
fn a_command_that_cannot_start_is_exit_2() {
    let output = taskscope(&["check", "--", "/no/such/program"]);
    assert_eq!(status(&output), 2);
    assert!(
        stderr(&output).contains("cannot start `/no/such/program`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_command_that_records_nothing_is_exit_2_with_the_likely_causes() {
    let output = taskscope(&["check", "--", "true"]);
    assert_eq!(status(&output), 2);
    let message = stderr(&output);
    assert!(
        message.contains("no instrumented process") && message.contains("taskscope::init()"),
        "{message}"
    );
}

#[test]
fn a_recording_with_a_stall_fails_with_its_spawn_location() {
    let (_dir, path) = temp_recording(true);
    let output = taskscope(&["check", "--recording", path.to_str().unwrap()]);
    assert_eq!(status(&output), 1);
    let report = stdout(&output);
    assert!(report.starts_with("FAIL"), "{report}");
    assert!(report.contains("error[stall] src/main.rs:7:5"), "{report}");
}

#[test]
fn warn_on_and_allow_let_a_stall_pass() {
    let (_dir, path) = temp_recording(true);
    let path = path.to_str().unwrap();
    let warned = taskscope(&["check", "--warn-on", "stall", "--recording", path]);
    assert_eq!(status(&warned), 0, "{}", stdout(&warned));
    assert!(stdout(&warned).contains("warning[stall]"));
    let allowed = taskscope(&[
        "check",
        "--allow",
        "stall@src/main.rs:*",
        "--recording",
        path,
    ]);
    assert_eq!(status(&allowed), 0, "{}", stdout(&allowed));
    assert!(stdout(&allowed).contains("1 finding accepted by allowances"));
    assert!(
        !stderr(&allowed).contains("warning"),
        "{}",
        stderr(&allowed)
    );
    // An allowance for another kind at the site accepts nothing, and says so.
    let other = taskscope(&[
        "check",
        "--allow",
        "alive_at_shutdown@src/main.rs:*",
        "--recording",
        path,
    ]);
    assert_eq!(status(&other), 1, "{}", stdout(&other));
    assert!(
        stdout(&other).contains(
            "note: the allowance `alive_at_shutdown@src/main.rs:*` (--allow) matched nothing"
        ),
        "{}",
        stdout(&other)
    );
    // The bare form of earlier versions still accepts every kind, with a warning.
    let bare = taskscope(&["check", "--allow", "src/main.rs:*", "--recording", path]);
    assert_eq!(status(&bare), 0, "{}", stdout(&bare));
    assert!(
        stderr(&bare).contains("warning: --allow 'src/main.rs:*' names no kind"),
        "{}",
        stderr(&bare)
    );
}

#[test]
fn an_allow_list_found_in_the_repository_applies_and_a_bad_one_cannot_check() {
    let (_dir, path) = temp_recording(true);
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir(repo.path().join(".git")).unwrap();
    let nested = repo.path().join("crates/app");
    std::fs::create_dir_all(&nested).unwrap();
    let allow_list = repo.path().join("taskscope.toml");
    std::fs::write(
        &allow_list,
        "[[allow]]\nkind = \"stall\"\nsite = \"src/main.rs:*\"\nreason = \"a known slow start\"\n",
    )
    .unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_taskscope"))
            .args(["check", "--recording", path.to_str().unwrap()])
            .current_dir(&nested)
            .env_remove("TASKSCOPE_STALL_THRESHOLD")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let found = run();
    assert_eq!(status(&found), 0, "{}", stdout(&found));
    assert!(stdout(&found).contains("1 finding accepted by allowances"));
    assert!(
        stderr(&found).contains("allowances read from"),
        "{}",
        stderr(&found)
    );

    std::fs::write(
        &allow_list,
        "[[allow]]\nkind = \"stall\"\nsite = \"src/main.rs:*\"\n",
    )
    .unwrap();
    let bad = run();
    assert_eq!(status(&bad), 2, "{}", stdout(&bad));
    assert!(
        stderr(&bad).contains("taskscope.toml:1") && stderr(&bad).contains("no `reason`"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn a_higher_threshold_drops_shorter_stalls() {
    let (_dir, path) = temp_recording(true);
    let output = taskscope(&[
        "check",
        "--stall-threshold",
        "300ms",
        "--recording",
        path.to_str().unwrap(),
    ]);
    assert_eq!(status(&output), 0, "{}", stdout(&output));
}

#[test]
fn the_json_report_follows_the_v1_schema() {
    let (dir, path) = temp_recording(true);
    let report = dir.path().join("report.json");
    let output = taskscope(&[
        "check",
        "--format",
        "json",
        "--output",
        report.to_str().unwrap(),
        "--recording",
        path.to_str().unwrap(),
    ]);
    assert_eq!(status(&output), 1);
    assert!(stdout(&output).is_empty(), "the report went to the file");
    assert!(
        stderr(&output).contains("FAIL"),
        "a summary still goes to stderr"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    assert_eq!(json["schema"], "taskscope.check/v1");
    assert_eq!(json["verdict"], "fail");
    assert!(json["command"].is_null() && json["exit_code"].is_null());
    assert_eq!(json["stall_threshold_ms"], 100.0);
    assert_eq!(json["processes"][0]["pid"], 4242);
    assert_eq!(json["summary"]["findings"], 1);
    let finding = &json["findings"][0];
    assert_eq!(finding["kind"], "stall");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["spawn_location"], "src/main.rs:7:5");
    assert_eq!(finding["duration_ms"], 250.0);
    assert_eq!(finding["task"]["id"], 1);
}

#[test]
fn a_cut_recording_is_judged_on_what_it_holds_with_a_warning() {
    let (_dir, path) = temp_recording(false);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0x20, 0x01]); // the start of a message that never finished
    std::fs::write(&path, bytes).unwrap();
    let output = taskscope(&["check", "--recording", path.to_str().unwrap()]);
    assert_eq!(status(&output), 1);
    assert!(stdout(&output).contains("error[stall] src/main.rs:7:5"));
    assert!(
        stdout(&output).contains("recording was cut"),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("was cut at byte"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn events_prints_one_json_update_per_line_and_warns_on_a_cut_end() {
    let (_dir, path) = temp_recording(false);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0x20, 0x01]);
    std::fs::write(&path, bytes).unwrap();
    let output = taskscope(&["events", path.to_str().unwrap()]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["process"]["pid"], 4242);
    assert_eq!(lines[1]["stalls"][0]["phase"], "STALL_PHASE_ENDED");
    assert!(stderr(&output).contains("warning"), "{}", stderr(&output));
}

#[test]
fn events_warns_about_a_recording_that_ends_without_the_exit() {
    let (_dir, path) = temp_recording(false);
    let output = taskscope(&["events", path.to_str().unwrap()]);
    assert_eq!(status(&output), 0);
    assert_eq!(stdout(&output).lines().count(), 2);
    assert!(
        stderr(&output).contains("without the process's exit"),
        "{}",
        stderr(&output)
    );
    let (_dir, whole) = temp_recording(true);
    assert!(stderr(&taskscope(&["events", whole.to_str().unwrap()])).is_empty());
}

#[test]
fn events_prints_what_it_could_before_a_corrupt_part() {
    let (_dir, path) = temp_recording(true);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0x05, 0xff, 0xff, 0xff, 0xff, 0xff]);
    std::fs::write(&path, bytes).unwrap();
    let output = taskscope(&["events", path.to_str().unwrap()]);
    assert_eq!(status(&output), 2);
    assert_eq!(stdout(&output).lines().count(), 3);
    assert!(
        stderr(&output).contains("corrupt at byte"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn github_and_junit_formats_carry_the_finding() {
    let (_dir, path) = temp_recording(true);
    let path = path.to_str().unwrap();
    let github = taskscope(&["check", "--format", "github", "--recording", path]);
    assert_eq!(status(&github), 1);
    assert!(
        stdout(&github).contains("::error file=src/main.rs,line=7,col=5,title=taskscope stall::"),
        "{}",
        stdout(&github)
    );
    let junit = taskscope(&["check", "--format", "junit", "--recording", path]);
    assert_eq!(status(&junit), 1);
    assert!(
        stdout(&junit).contains("<failure type=\"stall\""),
        "{}",
        stdout(&junit)
    );
}

fn ci_guide() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ci.md")).unwrap()
}

/// Every flag `check --help` lists is documented in docs/ci.md, and every flag the guide
/// documents exists, so the two cannot drift apart.
#[test]
fn the_ci_guide_documents_exactly_the_flags_check_has() {
    let long_flags = |text: &str| -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|word| {
                word.starts_with("--") && word.len() > 2 && word.as_bytes()[2].is_ascii_lowercase()
            })
            .map(str::to_owned)
            .collect()
    };
    let help = long_flags(&stdout(&taskscope(&["check", "--help"])));
    let guide = ci_guide();
    let table = &guide[guide.find("## Flags").unwrap()..guide.find("## Exit status").unwrap()];
    let documented = long_flags(table);
    let mut expected = help.clone();
    expected.remove("--help");
    expected.remove("--version");
    assert_eq!(
        documented, expected,
        "docs/ci.md's flag table vs `check --help`"
    );
}

/// Every field a JSON report has is described in docs/ci.md's schema table.
#[test]
fn the_ci_guide_documents_every_json_field() {
    let (dir, path) = temp_recording(true);
    let report = dir.path().join("report.json");
    taskscope(&[
        "check",
        "--format",
        "json",
        "--output",
        report.to_str().unwrap(),
        "--recording",
        path.to_str().unwrap(),
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    let guide = ci_guide();
    let table = &guide[guide.find("| field | type | meaning |").unwrap()..];
    let mut fields = Vec::new();
    for (key, value) in json.as_object().unwrap() {
        match value {
            serde_json::Value::Object(inner) => {
                fields.extend(inner.keys().map(|k| format!("{key}.{k}")))
            }
            serde_json::Value::Array(_) if key == "findings" => {
                fields.extend(
                    value[0]
                        .as_object()
                        .unwrap()
                        .keys()
                        .map(|k| format!("findings[].{k}")),
                );
            }
            _ => fields.push(key.clone()),
        }
    }
    for field in fields {
        // `summary.completed` / `cancelled` / `panicked` share a row.
        let last = field.rsplit('.').next().unwrap();
        let documented = table.contains(&format!("`{field}`"))
            || (field.starts_with("summary.") && table.contains(&format!("/ `{last}`")));
        assert!(
            documented,
            "docs/ci.md's schema table does not describe `{field}`"
        );
    }
}

/// `taskscope check ARGS` started in the background, its output discarded.
fn spawn_check(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_taskscope"))
        .arg("check")
        .args(args)
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The live processes of a process group (zombies count as gone).
fn group_members(group: i32) -> Vec<i32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces, so split after it.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        if fields[0] != "Z" && fields[2].parse::<i32>() == Ok(group) {
            members.push(pid);
        }
    }
    members
}

/// Polls `condition` for up to 60 s (a loaded machine is slow, never that slow).
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The process group `check` runs its command in: the group led by its only child.
fn command_group(check: &std::process::Child) -> i32 {
    let children = format!("/proc/{0}/task/{0}/children", check.id());
    let mut group = 0;
    eventually("the command to start", || {
        let text = std::fs::read_to_string(&children).unwrap_or_default();
        group = text
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        group != 0
    });
    group
}

fn send(pid: i32, signal: i32) {
    // SAFETY: a plain syscall on a process this test started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

fn wait_exit(mut check: std::process::Child) -> i32 {
    let mut status = None;
    eventually("check to exit", || {
        status = check.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap().code().expect("check exited, not killed")
}

fn verdict_in(report: &Path) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    json["verdict"].as_str().unwrap().to_owned()
}

/// A command that ignores SIGTERM and SIGINT (and so does the `sleep` its shell runs) is
/// killed after `--kill-after`, shell and sleep alike, and the report says "interrupted".
#[test]
fn a_command_ignoring_sigterm_is_killed_with_its_children_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let check = spawn_check(&[
        "--kill-after",
        "1s",
        "--format",
        "json",
        "--output",
        report.to_str().unwrap(),
        "--",
        "bash",
        "-c",
        "trap '' TERM INT; sleep 1000; echo done",
    ]);
    let pid = i32::try_from(check.id()).unwrap();
    let group = command_group(&check);
    eventually("bash to start sleep", || group_members(group).len() == 2);
    send(pid, libc::SIGTERM);
    assert_eq!(wait_exit(check), 128 + libc::SIGTERM);
    eventually("bash and sleep to be gone", || {
        group_members(group).is_empty()
    });
    assert_eq!(verdict_in(&report), "interrupted");
}

/// Every terminating signal is forwarded and ends in an "interrupted" report with exit
/// status 128 + the signal.
#[test]
fn sighup_sigquit_and_sigint_give_an_interrupted_report() {
    for signal in [libc::SIGHUP, libc::SIGQUIT, libc::SIGINT] {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.json");
        let check = spawn_check(&[
            "--format",
            "json",
            "--output",
            report.to_str().unwrap(),
            "--",
            "sleep",
            "1000",
        ]);
        let pid = i32::try_from(check.id()).unwrap();
        let group = command_group(&check);
        send(pid, signal);
        assert_eq!(wait_exit(check), 128 + signal, "signal {signal}");
        eventually("sleep to be gone", || group_members(group).is_empty());
        assert_eq!(verdict_in(&report), "interrupted", "signal {signal}");
    }
}

/// `check` killed outright (no chance to forward anything) takes its command with it.
#[test]
fn sigkill_of_check_kills_the_command() {
    let check = spawn_check(&["--", "sleep", "1000"]);
    let pid = i32::try_from(check.id()).unwrap();
    let group = command_group(&check);
    send(pid, libc::SIGKILL);
    wait_exit_killed(check);
    eventually("sleep to die with check", || {
        group_members(group).is_empty()
    });
}

fn wait_exit_killed(mut check: std::process::Child) {
    let status = check.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
}

/// Peak RSS of `taskscope ARGS` in KiB (from `wait4`, which reaps it), with stdin and
/// stdout discarded.
#[allow(clippy::zombie_processes)]
fn peak_rss_kib(args: &[&str]) -> i64 {
    let child = Command::new(env!("CARGO_BIN_EXE_taskscope"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing into the two locals.
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    usage.ru_maxrss
}

/// A crafted recording: a valid header, then a million zero bytes, each a length prefix of
/// an empty update. `replay` once held every decoded update (about 380 bytes each); it
/// streams now, so its memory does not follow the file.
#[test]
fn replay_memory_does_not_grow_with_a_crafted_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros.tsrec");
    let mut bytes = Writer::new(Vec::new()).unwrap().into_inner().unwrap();
    bytes.resize(bytes.len() + 1024 * 1024, 0);
    std::fs::write(&path, bytes).unwrap();
    // Without a terminal, replay reads (checks and indexes) the whole file, then stops.
    let kib = peak_rss_kib(&["replay", path.to_str().unwrap()]);
    assert!(
        kib < 100 * 1024,
        "replay of a 1 MiB file peaked at {kib} KiB"
    );
}
