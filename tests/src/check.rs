//! `taskscope check` run the way the end-to-end suites run it: JSON report to a file (the
//! checked program's own output shares stdout), from the workspace root, the checked
//! program's environment passed through, `RUST_BACKTRACE=1` as most CI sets it.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::build::{example, taskscope};
use crate::source::Location;
use crate::workspace_root;

/// What one `taskscope check` run gave.
#[derive(Debug)]
pub struct Checked {
    /// Its exit status.
    pub status: i32,
    /// The JSON report, `Value::Null` when none was written.
    pub report: Value,
    /// Its output, and the checked program's.
    pub output: Output,
}

/// Runs `taskscope check --format json --output FILE`, to which `arguments` adds the rest.
fn run(arguments: impl FnOnce(&mut Command)) -> Checked {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let mut command = Command::new(taskscope());
    command
        .args(["check", "--format", "json", "--output"])
        .arg(&report_path)
        .current_dir(workspace_root())
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .stdin(Stdio::null());
    arguments(&mut command);
    let output = command.output().expect("taskscope runs");
    let status = output.status.code().expect("taskscope exited");
    let report = std::fs::read_to_string(&report_path)
        .map(|text| serde_json::from_str(&text).expect("the report is JSON"))
        .unwrap_or(Value::Null);
    Checked {
        status,
        report,
        output,
    }
}

/// Runs `taskscope check --format json --output FILE args...` with no command (`--attach`
/// and the like); the report may be missing.
pub fn check_args(args: &[&str]) -> Checked {
    run(|command| {
        command.args(args);
    })
}

/// Runs `taskscope check --format json [extra] -- command` (with `command`'s environment);
/// panics when no report was written.
pub fn check(extra: &[&str], command: &mut Command) -> Checked {
    let checked = run(|taskscope| {
        taskscope
            .args(extra)
            .arg("--")
            .arg(command.get_program())
            .args(command.get_args());
        // Variables the command removes are removed for `taskscope check` too, which
        // passes its environment on: a nested `cargo` (`build::cargo`) must not see the
        // test runner's package variables.
        for (name, value) in command.get_envs() {
            match value {
                Some(value) => taskscope.env(name, value),
                None => taskscope.env_remove(name),
            };
        }
        // As most CI sets it: a panic hook then symbolizes a backtrace inside the
        // panicking poll, which must never be taken for a stall.
        taskscope.env("RUST_BACKTRACE", "1");
    });
    if checked.report.is_null() {
        panic!(
            "no report (status {}); stderr:\n{}",
            checked.status,
            String::from_utf8_lossy(&checked.output.stderr)
        );
    }
    checked
}

/// Checks the example program `name`.
pub fn check_example(name: &str, extra: &[&str]) -> Checked {
    check(extra, &mut Command::new(example(name)))
}

/// The report's findings.
pub fn findings(checked: &Checked) -> &Vec<Value> {
    checked.report["findings"].as_array().unwrap()
}

/// The findings of `kind` in the report.
pub fn findings_of_kind<'a>(checked: &'a Checked, kind: &str) -> Vec<&'a Value> {
    findings(checked)
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

/// Asserts a failed check with exactly one finding, of `kind` at `location`.
pub fn assert_single_error(checked: &Checked, kind: &str, location: &Location) -> Value {
    let stderr = String::from_utf8_lossy(&checked.output.stderr);
    assert_eq!(checked.status, 1, "{:#}\n{stderr}", checked.report);
    assert_eq!(checked.report["verdict"], "fail");
    assert_eq!(
        checked.report["exit_code"], 0,
        "the example itself succeeded"
    );
    let [finding] = findings(checked).as_slice() else {
        panic!("expected one finding: {:#}", checked.report)
    };
    assert_eq!(finding["kind"], kind, "{finding:#}");
    assert_eq!(finding["severity"], "error");
    assert_eq!(
        finding["spawn_location"],
        location.to_string(),
        "{finding:#}"
    );
    finding.clone()
}

/// Asserts a passed check of one process with tasks and no findings.
pub fn assert_clean_pass(checked: &Checked) {
    assert_eq!(checked.status, 0, "{:#}", checked.report);
    assert_eq!(checked.report["verdict"], "pass");
    assert_eq!(checked.report["exit_code"], 0);
    assert_eq!(findings(checked).len(), 0, "{:#}", checked.report);
    assert_eq!(checked.report["processes"].as_array().unwrap().len(), 1);
    assert!(checked.report["summary"]["tasks"].as_u64().unwrap() > 0);
}

/// A stall finding's stack has a frame at `line` (`src/bin/x.rs:12:`, the column left
/// open): the finding names the blocking line.
pub fn assert_stack_names(stall: &Value, line: &str) {
    let frames = stall["backtrace"].as_array().expect("a stack");
    assert!(
        frames
            .iter()
            .any(|f| f["location"].as_str().is_some_and(|l| l.contains(line))),
        "the stack names {line}: {stall:#}"
    );
}
