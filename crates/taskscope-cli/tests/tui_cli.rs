//! The dashboard's commands where no dashboard can open: each says why and what to do,
//! with exit status 2, and leaves the terminal alone.

use std::process::{Command, Output, Stdio};

fn taskscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taskscope"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("taskscope runs")
}

fn fails_saying(output: &Output, words: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(words), "expected {words:?} in:\n{stderr}");
    assert!(
        output.stdout.is_empty(),
        "nothing may be drawn without a terminal: {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn attach_without_a_terminal_points_to_the_commands_for_scripts() {
    let output = taskscope(&["attach", "unix:/nonexistent/app.sock"]);
    fails_saying(&output, "needs a terminal");
    fails_saying(&output, "taskscope events");
}

#[test]
fn plain_taskscope_is_attach() {
    fails_saying(&taskscope(&[]), "needs a terminal");
}

#[test]
fn attach_to_something_that_is_not_an_address_says_what_one_looks_like() {
    fails_saying(&taskscope(&["attach", "not an address"]), "unix:/path");
}

#[test]
fn replay_of_a_missing_file_says_so() {
    fails_saying(
        &taskscope(&["replay", "/nonexistent/app.tsrec"]),
        "cannot open",
    );
}

#[test]
fn replay_of_a_directory_of_several_recordings_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a-1.tsrec", "b-2.tsrec"] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    let output = taskscope(&["replay", dir.path().to_str().unwrap()]);
    fails_saying(&output, "holds 2 recordings");
    fails_saying(&output, "b-2.tsrec");
}

#[test]
fn replay_of_a_file_that_is_not_a_recording_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.tsrec");
    std::fs::write(&file, b"hello, this is not a recording").unwrap();
    let output = taskscope(&["replay", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot replay"), "{stderr}");
}

#[test]
fn demo_without_a_terminal_starts_nothing() {
    fails_saying(&taskscope(&["demo"]), "needs a terminal");
}
