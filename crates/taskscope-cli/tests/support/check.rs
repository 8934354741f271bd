//! `taskscope check` run the way the end-to-end tests run it: JSON report to a file, the
//! checked program's environment passed through, `RUST_BACKTRACE=1` as most CI sets it.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::{example, workspace_root};

pub struct Checked {
    pub status: i32,
    pub report: Value,
    pub output: Output,
}

/// Runs `taskscope check --format json [extra] -- command` (with `command`'s environment),
/// the report written to a file (the checked program's own output shares stdout).
pub fn check(extra: &[&str], command: &mut Command) -> Checked {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let mut taskscope = Command::new(env!("CARGO_BIN_EXE_taskscope"));
    taskscope
        .args(["check", "--format", "json", "--output"])
        .arg(&report_path)
        .args(extra)
        .arg("--")
        .arg(command.get_program())
        .args(command.get_args())
        .envs(command.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(workspace_root())
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        // As most CI sets it: a panic hook then symbolizes a backtrace inside the panicking
        // poll, which must never be taken for a stall.
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null());
    let output = taskscope.output().expect("taskscope runs");
    let status = output.status.code().expect("taskscope exited");
    let report = std::fs::read_to_string(&report_path)
        .map(|text| serde_json::from_str(&text).expect("the report is JSON"))
        .unwrap_or_else(|_| {
            panic!(
                "no report (status {status}); stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    Checked {
        status,
        report,
        output,
    }
}

pub fn check_example(name: &str, extra: &[&str]) -> Checked {
    check(extra, &mut Command::new(example(name)))
}

pub fn findings(checked: &Checked) -> &Vec<Value> {
    checked.report["findings"].as_array().unwrap()
}

/// Asserts a failed check with exactly one finding, of `kind` at `location`.
pub fn assert_single_error(checked: &Checked, kind: &str, location: &str) -> Value {
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
    assert_eq!(finding["spawn_location"], location, "{finding:#}");
    finding.clone()
}

pub fn assert_clean_pass(checked: &Checked) {
    assert_eq!(checked.status, 0, "{:#}", checked.report);
    assert_eq!(checked.report["verdict"], "pass");
    assert_eq!(checked.report["exit_code"], 0);
    assert_eq!(findings(checked).len(), 0, "{:#}", checked.report);
    assert_eq!(checked.report["processes"].as_array().unwrap().len(), 1);
    assert!(checked.report["summary"]["tasks"].as_u64().unwrap() > 0);
}
