//! The probe is a drop-in on a service written the usual way (`src/service.rs`): it
//! starts, logs exactly what it logs without the probe, and the probe counts the same
//! tasks and outcomes whatever `RUST_LOG` and `RUST_BACKTRACE` say.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use taskscope_api::v1;
use taskscope_e2e::{Folded, Location, command, connect, free_port, run_recorded};
use tokio_stream::StreamExt;

/// The service with scripted clients, a recording, and the given `RUST_LOG`.
fn service(name: &str, rust_log: Option<&str>, backtrace: &str) -> Command {
    let mut command = command(name);
    command
        .env("SERVICE_CLIENTS", "3")
        .env("RUST_BACKTRACE", backtrace)
        .env("NO_COLOR", "1");
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    command
}

/// The lines a person reads, with what differs from run to run taken out (timestamps,
/// the port, thread ids), in order (tasks log concurrently).
fn normalized_log(output: &Output) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let address = stdout
        .lines()
        .find_map(|l| l.strip_prefix("listening on "))
        .unwrap_or_else(|| panic!("the service says where it listens: {stdout}"));
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|line| {
            let line = line.replace(address, "ADDRESS");
            let line = match line.split_once(' ') {
                Some((time, rest)) if time.len() > 20 && time.ends_with('Z') => rest.to_owned(),
                _ => line,
            };
            match (line.find("' ("), line.find(") panicked")) {
                (Some(open), Some(close)) if open < close => {
                    format!("{}{}", &line[..open + 2], &line[close + 2..])
                }
                _ => line,
            }
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn the_service_logs_exactly_what_it_logs_without_the_probe() {
    for rust_log in [None, Some("info"), Some("debug")] {
        let plain = service("service_plain", rust_log, "0").output().unwrap();
        assert!(plain.status.success(), "{plain:?}");
        let expected = normalized_log(&plain);
        assert!(expected.iter().any(|l| l.contains("scripted clients done")));
        for probed in ["service", "service_layer"] {
            let dir = tempfile::tempdir().unwrap();
            let output = service(probed, rust_log, "0")
                .env("TASKSCOPE_RECORD", dir.path())
                .output()
                .unwrap();
            assert!(output.status.success(), "{probed}: {output:?}");
            assert_eq!(
                normalized_log(&output),
                expected,
                "{probed} with RUST_LOG={rust_log:?} logs what the service logs alone"
            );
        }
    }
}

/// What the probe saw, in terms that must not depend on logging: each spawn site's tasks
/// by outcome, and the stalls of the task that panicked (whose panic hook, printing a
/// backtrace under `RUST_BACKTRACE=1`, holds its thread). Other stalls are left out: on a
/// loaded machine a poll can lose its CPU for 100 ms, which is the machine's doing.
fn seen(folded: &Folded) -> (BTreeMap<String, Vec<i32>>, usize) {
    let mut tasks: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    let mut panicked = Vec::new();
    for task in folded.tasks.values() {
        let Location { file, line, .. } = task.location();
        assert!(
            !file.contains("crates/taskscope/src"),
            "the probe's own spawns are not the app's tasks: {task:?}"
        );
        let outcome = task.ended.as_ref().map_or(-1, |e| e.outcome);
        if outcome == v1::Outcome::Panicked as i32 {
            panicked.push(task.spawned.id);
        }
        tasks
            .entry(format!("{file}:{line} kind {}", task.spawned.kind))
            .or_default()
            .push(outcome);
    }
    for outcomes in tasks.values_mut() {
        outcomes.sort();
    }
    let panic_stalls = folded
        .stalls
        .values()
        .filter(|s| panicked.contains(&s.task_id))
        .count();
    (tasks, panic_stalls)
}

#[test]
fn what_the_probe_counts_does_not_depend_on_rust_log_or_rust_backtrace() {
    for probed in ["service", "service_layer"] {
        let mut baseline = None;
        for (rust_log, backtrace) in [
            (None, "0"),
            (Some("info"), "0"),
            (Some("trace"), "0"),
            (Some("tokio=trace"), "0"),
            (None, "1"),
        ] {
            let mut envs = vec![("SERVICE_CLIENTS", "3"), ("RUST_BACKTRACE", backtrace)];
            if let Some(filter) = rust_log {
                envs.push(("RUST_LOG", filter));
            }
            let (output, folded) = run_recorded(probed, &envs);
            assert!(output.status.success(), "{probed} {rust_log:?}: {output:?}");
            let seen = seen(&folded);
            let panicked = v1::Outcome::Panicked as i32;
            assert!(
                seen.0
                    .values()
                    .flatten()
                    .filter(|o| **o == panicked)
                    .count()
                    == 1,
                "{probed} {rust_log:?}: the migration panicked once: {seen:#?}"
            );
            match &baseline {
                None => baseline = Some(seen),
                Some(expected) => assert_eq!(
                    &seen, expected,
                    "{probed}: RUST_LOG={rust_log:?} RUST_BACKTRACE={backtrace} changes what is \
                     counted; stalls: {:#?}",
                    folded.stalls
                ),
            }
        }
    }
}

#[test]
fn a_watched_service_at_rust_log_trace_logs_nothing_of_the_probes_and_stops_on_ctrl_c() {
    let port = free_port();
    let mut child = command("service")
        .env("TASKSCOPE_BIND", format!("127.0.0.1:{port}"))
        .env("TASKSCOPE_TOKEN", taskscope_e2e::TOKEN)
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on"), "{line}");

    // A client watches for a while: the probe's server, its runtime and its timers work.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let updates = runtime.block_on(async {
        let mut client = connect(&format!("http://127.0.0.1:{port}")).await;
        let mut stream = client
            .watch(v1::WatchRequest::default())
            .await
            .unwrap()
            .into_inner();
        let deadline = Instant::now() + Duration::from_millis(800);
        let mut updates = 0;
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline.into(), stream.next()).await {
            updates += 1;
        }
        updates
    });
    assert!(updates > 0, "the watcher got updates");

    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ctrl-c received, shutting down"),
        "{stderr}"
    );
    for (line_number, line) in stderr.lines().enumerate() {
        for foreign in ["h2::", "tonic", "hyper", "tower", "taskscope::", "Interval"] {
            assert!(
                !line.contains(foreign),
                "line {line_number} is the probe's, not the app's: {line}"
            );
        }
    }
}
