//! End-to-end: a service whose subscriber puts one `EnvFilter` in front of every layer
//! (`registry().with(EnvFilter::from_default_env()).with(fmt::layer()).with(taskscope::layer())`)
//! hides tokio's task spans from the probe. `taskscope check` must then say it could not
//! judge (exit 2) and why, never pass a program it could not see; with the filter on the log
//! layer instead (`fmt::layer().with_filter(…)`), the same service's tasks are seen.

use std::process::{Command, Stdio};

use taskscope_e2e::check::{check, check_args, findings};
use taskscope_e2e::{Running, command, wait_until};

/// The probe's fix, as `check` and the probe's own warning say it.
const FIX: &str = ".with_filter(EnvFilter::from_default_env())";

fn service(filter: &str) -> Command {
    let mut service = command("service_global_filter");
    service
        .env("SERVICE_FILTER", filter)
        .env("SERVICE_CLIENTS", "120");
    service
}

#[test]
fn a_global_env_filter_hiding_tokio_spans_cannot_pass_check_and_says_why() {
    let mut command = Command::new(taskscope_e2e::taskscope());
    command.args(["check", "--"]);
    let service = service("global");
    command
        .arg(service.get_program())
        .envs(service.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdout(Stdio::null());
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "could not judge: {stderr}");
    assert!(
        stderr.contains("nothing can be judged") && stderr.contains(FIX),
        "check says why and how to fix it: {stderr}"
    );
    assert_eq!(
        stderr
            .matches("taskscope: warning: taskscope sees no tasks")
            .count(),
        1,
        "the probe itself says so on the app's stderr, once: {stderr}"
    );
    assert!(!stderr.contains("PASS"), "{stderr}");
}

#[test]
fn attaching_to_a_service_whose_filter_hides_tokio_spans_is_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("probe.sock");
    let mut service = service("global");
    service
        .env_remove("SERVICE_CLIENTS")
        .env("TASKSCOPE_BIND", format!("unix:{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _service = Running::spawn(&mut service);
    wait_until("the probe's socket", || socket.exists());
    let address = format!("unix:{}", socket.display());
    let checked = check_args(&["--duration", "2s", "--attach", &address]);
    let stderr = String::from_utf8_lossy(&checked.output.stderr);
    assert_eq!(checked.status, 2, "could not judge: {stderr}");
    assert!(stderr.contains(FIX), "{stderr}");
}

#[test]
fn with_the_filter_on_the_log_layer_the_same_service_is_seen() {
    let checked = check(&[], &mut service("per-layer"));
    assert_eq!(checked.status, 0, "{:#}", checked.report);
    let tasks = checked.report["summary"]["tasks"].as_u64().unwrap();
    assert!(tasks > 120, "a task per connection, and more: {tasks}");
    let kinds: Vec<_> = findings(&checked)
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["panic"], "{:#}", checked.report);
}
