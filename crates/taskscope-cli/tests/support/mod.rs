//! What the end-to-end tests share: the workspace, and the example programs they run.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

pub mod check;
pub mod tmux;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `--target-dir DIR` plus the profile flags this test binary was built with, for nested
/// cargo commands: the same target directory and settings as the workspace's own test
/// build, so they find everything built already instead of compiling it all again.
pub fn build_settings() -> Vec<std::ffi::OsString> {
    let profile_dir = Path::new(env!("CARGO_BIN_EXE_taskscope")).parent().unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let mut args = vec!["--target-dir".into(), target_dir.as_os_str().to_owned()];
    match profile_dir.file_name().unwrap().to_str().unwrap() {
        // `cargo test`'s default: dependencies with `dev`, tests with `test`.
        "debug" => {}
        "release" => args.push("--release".into()),
        other => args.extend(["--profile".into(), other.into()]),
    }
    args
}

/// `cargo`, run from the workspace root.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

/// The example executables by target name (`healthy`, …, and `leaky_tests` for the test
/// target), built once per test process.
pub fn examples() -> &'static HashMap<String, PathBuf> {
    static EXAMPLES: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        // Exactly what the workspace's test run builds (`cargo nextest run --workspace`
        // runs `cargo test --no-run --workspace`): the same feature unification and
        // profiles, so the same artifacts, and nothing to rebuild there.
        let output = cargo()
            .args([
                "test",
                "--no-run",
                "--workspace",
                "--message-format",
                "json",
            ])
            .args(build_settings())
            .stderr(Stdio::inherit())
            .output()
            .expect("cargo runs");
        assert!(output.status.success(), "building the examples failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|message| message["reason"] == "compiler-artifact")
            // The programs themselves and integration tests, not unit-test harnesses.
            .filter(|message| {
                let kind = &message["target"]["kind"][0];
                (kind == "bin" && message["profile"]["test"] == false) || kind == "test"
            })
            .filter_map(|message| {
                let name = message["target"]["name"].as_str()?.to_owned();
                Some((name, PathBuf::from(message["executable"].as_str()?)))
            })
            .collect()
    })
}

/// The path of one example executable.
pub fn example(name: &str) -> &'static Path {
    examples()
        .get(name)
        .unwrap_or_else(|| panic!("no example `{name}` was built"))
}

/// `file:line:col` of `call` on the first line of `source` containing `marker`, or on the
/// closest line above it that has one (rustfmt may move a trailing comment after an
/// opening brace onto the next line, inside the spawned block).
pub fn location_of_line(source: &str, marker: &str, call: &str) -> String {
    let path = workspace_root()
        .join("crates/taskscope-examples")
        .join(source);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let marked = lines
        .iter()
        .position(|line| line.contains(marker))
        .unwrap_or_else(|| panic!("no `{marker}` in {source}"));
    let column_of_call = |line: &str| match line.find("tokio::spawn") {
        Some(column) if call == "spawn" => Some(column),
        _ => line.find(call),
    };
    let (index, column) = (marked.saturating_sub(3)..=marked)
        .rev()
        .find_map(|index| Some((index, column_of_call(lines[index])?)))
        .unwrap_or_else(|| panic!("no `{call}` at or just above {source}:{}", marked + 1));
    format!(
        "crates/taskscope-examples/{source}:{}:{}",
        index + 1,
        column + 1
    )
}
