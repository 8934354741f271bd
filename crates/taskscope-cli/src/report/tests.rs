//! Every format over one fixed judgement, compared with the files in `snapshots/`.
//! After an intended change, regenerate them with `UPDATE_SNAPSHOTS=1 cargo test -p
//! taskscope-cli report::` and review the diff.

use std::path::{Path, PathBuf};

use super::text::Style;
use super::*;
use crate::model::judge::finding::{Descendant, Detail, Finding};
use crate::model::judge::policy::{FindingKind, Severity};
use crate::model::judge::{ProcessRef, Summary, UnusedAllowance};
use crate::model::stall::Frame;

fn fixture() -> Judgement {
    let finding = |kind, severity, count, location: &str, message: &str, detail| Finding {
        kind,
        severity,
        count,
        spawn_location: location.into(),
        task_id: 12,
        task_name: None,
        message: message.into(),
        pid: 4242,
        program: "/target/debug/app".into(),
        test: None,
        waiting_at: Vec::new(),
        detail,
    };
    let mut stall = finding(
        FindingKind::Stall,
        Severity::Error,
        3,
        "src/bin/app.rs:12:5",
        "3 times from this spawn site; worst: a poll of task 12 \"fetch\" blocked thread \
         `tokio-runtime-worker` for 612.4ms (threshold 100.0ms)",
        Detail::Stall {
            stall_id: 1,
            duration_ns: 612_400_000,
            thread: "tokio-runtime-worker".into(),
            backtrace: vec![
                Frame {
                    function: "app::fetch".into(),
                    location: Some("/repo/src/bin/app.rs:30:9".into()),
                    user: true,
                },
                Frame {
                    function: "tokio::runtime::task::core::Core::poll".into(),
                    location: None,
                    user: false,
                },
            ],
            trace: Some("traces/app-4242-stall-1.trace.json".into()),
        },
    );
    stall.task_name = Some("fetch".into());
    let mut leak = finding(
        FindingKind::AliveAtShutdown,
        Severity::Error,
        1,
        "tests/leaky.rs:9:5",
        "task 12 was still pending when its runtime shut down (in test `tests::leaks`)\n\
         and 37 tasks it spawned, still alive: src/server.rs:259:13 ×23, src/db.rs:135:9 ×14",
        Detail::AliveAtShutdown {
            descendants: vec![
                Descendant {
                    spawn_location: "src/server.rs:259:13".into(),
                    count: 23,
                },
                Descendant {
                    spawn_location: "src/db.rs:135:9".into(),
                    count: 14,
                },
            ],
        },
    );
    leak.test = Some("tests::leaks".into());
    leak.waiting_at = vec![
        Frame {
            function: "tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}".into(),
            location: Some("/home/ci/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/sync/mpsc/bounded.rs:245:42".into()),
            user: true,
        },
        Frame {
            function: "app::server::Session::run::{{closure}}".into(),
            location: Some("/repo/src/server.rs:88:31".into()),
            user: true,
        },
    ];
    Judgement {
        findings: vec![
            stall,
            leak,
            finding(
                FindingKind::Panic,
                Severity::Warning,
                1,
                "src/worker.rs:7:13",
                "task 12 panicked: <oops> & \"quotes\", 100%\nsecond line",
                Detail::Panic {
                    message: "<oops> & \"quotes\", 100%\nsecond line".into(),
                    location: None,
                    held_ns: 0,
                },
            ),
        ],
        allowed: 1,
        processes: vec![ProcessRef {
            pid: 4242,
            program: "/target/debug/app".into(),
            capability: taskscope_api::v1::Capability::Tasks,
        }],
        summary: Summary {
            tasks: 40,
            completed: 35,
            cancelled: 4,
            panicked: 1,
        },
        notes: vec!["app (pid 4242): the recording was cut".into()],
        unused_allowances: vec![UnusedAllowance {
            allowance: "stall@src/old.rs:*".into(),
            origin: "taskscope.toml:4".into(),
            reason: Some("a slow disk read, fixed since".into()),
        }],
        unused_allowances_fail: false,
    }
}

fn report<'a>(judgement: &'a Judgement, command: &'a [String], exit: ChildExit) -> Report<'a> {
    Report {
        judgement,
        command: Some(command),
        exit: Some(exit),
        stall_threshold_ns: 100_000_000,
        interrupted: None,
    }
}

fn assert_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/report/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", PathBuf::from(&path).display()));
    assert!(
        expected == actual,
        "{name} differs from its snapshot (UPDATE_SNAPSHOTS=1 to accept)\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

fn command() -> Vec<String> {
    vec!["cargo".into(), "test".into()]
}

#[test]
fn text_report() {
    let judgement = fixture();
    let command = command();
    assert_snapshot(
        "text.txt",
        &text::render(
            &report(&judgement, &command, ChildExit::Code(101)),
            Style::Plain,
        ),
    );
}

#[test]
fn text_report_in_colour_marks_the_verdict_and_severities() {
    let judgement = fixture();
    let command = command();
    let coloured = text::render(
        &report(&judgement, &command, ChildExit::Code(0)),
        Style::Colour,
    );
    assert!(coloured.contains("\x1b[1;31mFAIL\x1b[0m"));
    assert!(coloured.contains("\x1b[1;33mwarning\x1b[0m"));
}

/// A release build's chain holds only tokio's leaf frames: the report says why the
/// `.await` is missing and how to get it, in the line above the frames.
#[test]
fn a_chain_without_a_user_frame_says_why() {
    let mut judgement = fixture();
    let leak = &mut judgement.findings[1];
    leak.waiting_at = vec![Frame {
        function: "tokio::sync::notify::NotifiedProject::poll_notified".into(),
        location: Some("/home/ci/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/sync/notify.rs:1228:43".into()),
        user: false,
    }];
    let command = command();
    let text = text::render(
        &report(&judgement, &command, ChildExit::Code(1)),
        Style::Plain,
    );
    let expected = format!(
        "  waiting in tokio's code only; {}:\n    at tokio::sync::notify::NotifiedProject::poll_notified",
        crate::model::waiting::NO_USER_AWAIT
    );
    assert!(text.contains(&expected), "{text}");
}

#[test]
fn text_summary_of_a_clean_run() {
    let judgement = Judgement {
        processes: vec![ProcessRef {
            pid: 1,
            program: "healthy".into(),
            capability: taskscope_api::v1::Capability::Tasks,
        }],
        ..Judgement::default()
    };
    let command = command();
    assert_snapshot(
        "summary-pass.txt",
        &text::summary(
            &report(&judgement, &command, ChildExit::Code(0)),
            Style::Plain,
        ),
    );
}

#[test]
fn json_report() {
    let judgement = fixture();
    let command = command();
    let rendered = json::render(&report(&judgement, &command, ChildExit::Code(101)));
    let parsed: serde_json::Value = serde_json::from_str(&rendered).unwrap();
    assert_eq!(parsed["schema"], "taskscope.check/v1");
    assert_snapshot("report.json", &rendered);
}

#[test]
fn json_exit_code_is_null_when_the_command_was_killed() {
    let judgement = Judgement::default();
    let command = command();
    let rendered = json::render(&report(&judgement, &command, ChildExit::Signal(9)));
    let parsed: serde_json::Value = serde_json::from_str(&rendered).unwrap();
    assert!(parsed["exit_code"].is_null());
    assert_eq!(parsed["verdict"], "fail");
}

/// An interrupted run is neither a pass nor a fail, and every format says why.
#[test]
fn an_interrupted_run_says_so_in_every_format() {
    let judgement = Judgement::default();
    let command = command();
    let report = Report {
        interrupted: Some(15),
        ..report(&judgement, &command, ChildExit::Signal(15))
    };
    assert_eq!(report.verdict(), Verdict::Interrupted);
    let said = "stopped by signal 15";
    let text = text::summary(&report, Style::Plain);
    assert!(
        text.starts_with("INTERRUPTED") && text.contains(said),
        "{text}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&json::render(&report)).unwrap();
    assert_eq!(parsed["verdict"], "interrupted");
    let junit = junit::render(&report);
    assert!(
        junit.contains("<failure type=\"interrupted\"") && junit.contains(said),
        "{junit}"
    );
    let github = github::render(&report, None);
    assert!(
        github.starts_with("::error ") && github.contains(said),
        "{github}"
    );
}

#[test]
fn junit_report() {
    let judgement = fixture();
    let command = command();
    assert_snapshot(
        "junit.xml",
        &junit::render(&report(&judgement, &command, ChildExit::Code(101))),
    );
}

#[test]
fn junit_report_of_a_clean_run_has_one_passing_case() {
    let judgement = Judgement::default();
    let command = command();
    assert_snapshot(
        "junit-pass.xml",
        &junit::render(&report(&judgement, &command, ChildExit::Code(0))),
    );
}

#[test]
fn unused_allowances_fail_every_format_only_when_asked() {
    let mut judgement = fixture();
    judgement.findings.clear();
    let command = command();
    let passing = report(&judgement, &command, ChildExit::Code(0));
    assert_eq!(passing.verdict(), Verdict::Pass);
    assert!(!junit::render(&passing).contains("unused_allowance"));
    judgement.unused_allowances_fail = true;
    let failing = report(&judgement, &command, ChildExit::Code(0));
    assert_eq!(failing.verdict(), Verdict::Fail);
    assert!(junit::render(&failing).contains("<failure type=\"unused_allowance\""));
    assert!(
        github::render(&failing, None)
            .starts_with("::error title=taskscope check::the allowance `stall@src/old.rs:*`")
    );
    assert!(text::render(&failing, Style::Plain).contains("error: the allowance"));
    let json: serde_json::Value = serde_json::from_str(&json::render(&failing)).unwrap();
    assert_eq!(json["unused_allowances"][0]["severity"], "error");
}

#[test]
fn github_report() {
    let judgement = fixture();
    let command = command();
    let rendered = github::render(
        &report(&judgement, &command, ChildExit::Code(101)),
        Some(Path::new("/repo")),
    );
    assert_snapshot("github.txt", &rendered);
}

#[test]
fn locations_split_into_file_line_and_column() {
    assert_eq!(
        split_location("src/a.rs:12:5"),
        Some(("src/a.rs", 12, Some(5)))
    );
    assert_eq!(split_location("src/a.rs:12"), Some(("src/a.rs", 12, None)));
    assert_eq!(split_location("C:/x.rs:1:2"), Some(("C:/x.rs", 1, Some(2))));
    assert_eq!(split_location("<unknown>"), None);
    assert_eq!(split_location(":5"), None);
}
