//! End-to-end on plain stable tokio: programs built **without** `--cfg tokio_unstable`
//! (`crates/taskscope-examples/stable/`, laid out here as a standalone package with its
//! own target directory under the workspace's `target/` and its own `RUSTFLAGS`, so the
//! workspace's build stays one build). `taskscope check` must find the blocked worker at
//! the exact line that blocks it (in a system call or computing on a CPU), count the tasks
//! a test leaves behind under the test's name, and find nothing in a busy, healthy
//! program.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use taskscope_e2e::check::{check, findings, findings_of_kind};
use taskscope_e2e::{marked_line, workspace_root};

/// The examples' sources, in the workspace.
fn sources() -> PathBuf {
    workspace_root().join("crates/taskscope-examples/stable")
}

/// Builds the package once for the whole suite; returns its target directory.
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let package = tmp.join("stable-package");
        for dir in ["src/bin", "tests"] {
            std::fs::create_dir_all(package.join(dir)).unwrap();
            for entry in std::fs::read_dir(sources().join(dir)).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), package.join(dir).join(entry.file_name())).unwrap();
            }
        }
        // Pinned to the workspace's lock file: the same dependency versions, nothing
        // resolved anew.
        std::fs::copy(
            workspace_root().join("Cargo.lock"),
            package.join("Cargo.lock"),
        )
        .unwrap();
        let probe = workspace_root().join("crates/taskscope");
        let manifest = format!(
            "[package]\nname = \"taskscope-stable-examples\"\nversion = \"0.0.0\"\n\
             edition = \"2024\"\npublish = false\n\n[workspace]\n\n[dependencies]\n\
             taskscope = {{ path = {probe:?} }}\n\
             tokio = {{ version = \"1\", features = [\"rt-multi-thread\", \"macros\", \"time\", \
             \"net\", \"io-util\"] }}\n"
        );
        std::fs::write(package.join("Cargo.toml"), manifest).unwrap();
        // Shared with `probe_uninstrumented` (same dependencies and features): one build.
        let target = tmp
            .parent()
            .expect("CARGO_TARGET_TMPDIR is target/tmp")
            .join("stable-tokio");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--bins", "--tests", "--manifest-path"])
            .arg(package.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            // Overrides the workspace's `build.rustflags`, which turn tokio_unstable on.
            .env("RUSTFLAGS", "")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the stable examples build");
        target
    })
}

fn program(name: &str) -> Command {
    let mut command = Command::new(built().join("debug").join(name));
    command
        .env("TASKSCOPE_BIND", "off")
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .env_remove("RUST_LOG");
    command
}

/// The newest build of the `stable_leaks` test target.
fn leak_tests() -> Command {
    let deps = built().join("debug/deps");
    let newest = std::fs::read_dir(&deps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("stable_leaks-") && p.extension().is_none()
        })
        .max_by_key(|p| p.metadata().unwrap().modified().unwrap())
        .expect("the test target is built");
    let mut command = Command::new(newest);
    command.env_remove("TASKSCOPE_BIND");
    command
}

/// The 1-based line of `// BLOCKS` in an example.
/// The line marked `// BLOCKS` in the stable examples' source `file`.
fn blocking_line(file: &str) -> u32 {
    marked_line(&format!("stable/{file}"), "BLOCKS")
}

#[test]
fn a_task_blocking_its_worker_is_a_stall_at_the_blocking_line() {
    let checked = check(&[], &mut program("stable_stall"));
    assert_eq!(checked.status, 1, "{:#}", checked.report);
    assert_eq!(checked.report["processes"][0]["capability"], "workers");
    let [stall] = findings_of_kind(&checked, "stall")[..] else {
        panic!("one stall: {:#}", checked.report)
    };
    assert_eq!(stall["severity"], "error");
    // The example sleeps 700 ms; only a lower bound is certain.
    assert!(stall["duration_ms"].as_f64().unwrap() >= 500.0, "{stall:#}");
    assert!(!stall["thread"].as_str().unwrap().is_empty(), "{stall:#}");
    let line = format!(
        "src/bin/stable_stall.rs:{}:",
        blocking_line("src/bin/stable_stall.rs")
    );
    taskscope_e2e::check::assert_stack_names(stall, &line);
    assert!(
        stall["message"].as_str().unwrap().contains(&line),
        "{stall:#}"
    );
}

#[test]
fn a_ticker_alive_when_main_returns_is_counted_at_shutdown() {
    let checked = check(&[], &mut program("stable_stall"));
    let [leak] = findings_of_kind(&checked, "alive_at_shutdown")[..] else {
        panic!("one leak: {:#}", checked.report)
    };
    assert_eq!(leak["count"], 1, "{leak:#}");
    assert!(
        leak["message"]
            .as_str()
            .unwrap()
            .contains("--cfg tokio_unstable"),
        "says why there is no spawn location: {leak:#}"
    );
}

#[test]
fn the_tasks_a_test_leaves_running_are_counted_under_its_name() {
    let checked = check(&[], &mut leak_tests());
    assert_eq!(checked.status, 1, "{:#}", checked.report);
    let [leak] = findings_of_kind(&checked, "alive_at_shutdown")[..] else {
        panic!("one leak: {:#}", checked.report)
    };
    assert_eq!(leak["count"], 2, "{leak:#}");
    assert_eq!(leak["test"], "leaves_two_tickers_running", "{leak:#}");
    assert_eq!(findings(&checked).len(), 1, "{:#}", checked.report);
}

#[test]
fn a_busy_healthy_program_has_no_findings() {
    let mut busy = program("stable_busy");
    busy.env("STABLE_BUSY_SECS", "3");
    let checked = check(&[], &mut busy);
    assert_eq!(
        checked.status,
        0,
        "{:#}\n{}",
        checked.report,
        String::from_utf8_lossy(&checked.output.stderr)
    );
    assert_eq!(findings(&checked).len(), 0, "{:#}", checked.report);
}

#[test]
fn a_task_computing_on_its_worker_is_a_stall_at_the_computing_line() {
    let checked = check(&[], &mut program("stable_cpu_stall"));
    // With check's notes: they say whether a stall was seen and judged the machine's.
    assert_eq!(
        checked.status,
        1,
        "{:#}\n{}",
        checked.report,
        String::from_utf8_lossy(&checked.output.stderr)
    );
    let [stall] = findings_of_kind(&checked, "stall")[..] else {
        panic!("one stall: {:#}", checked.report)
    };
    assert_eq!(stall["severity"], "error");
    // The example computes for 700 ms of its thread's CPU time, however loaded the
    // machine (so the stall is the app's on any machine); only a lower bound is certain.
    assert!(stall["duration_ms"].as_f64().unwrap() >= 500.0, "{stall:#}");
    let file = "src/bin/stable_cpu_stall.rs";
    let line = format!("{file}:{}:", blocking_line(file));
    assert!(
        stall["message"].as_str().unwrap().contains(&line),
        "{stall:#}"
    );
}
