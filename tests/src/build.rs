//! The real binaries the suites run: the `taskscope` CLI, the example programs, and the
//! examples' test binaries (`leaky_tests`, …), each the one artifact the workspace's own
//! test build made.
//!
//! They belong to other packages, so `CARGO_BIN_EXE_*` cannot name them: they are built
//! (a no-op when the workspace is built already, as under `cargo nextest run --workspace`)
//! into the target directory this test binary came from. Nested cargo commands use
//! `--workspace` for the same reason: built with one package alone, shared dependencies
//! would get other features and be compiled all over again.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::workspace_root;

/// The profile directory this test binary was built into (`target/debug`): test
/// binaries live in its `deps/`, whether `cargo test` or `cargo nextest` runs them.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the test binary is in a directory");
    deps.parent()
        .expect("test binaries are in the profile's `deps/`")
        .to_owned()
}

/// `--target-dir DIR` plus the profile flags this test binary was built with, for nested
/// cargo commands: the same target directory and settings as the workspace's own test
/// build, so they find everything built already instead of compiling it all again.
pub fn build_settings() -> Vec<OsString> {
    let profile_dir = profile_dir();
    let target_dir = profile_dir
        .parent()
        .expect("the profile is in a target dir");
    let mut args = vec!["--target-dir".into(), target_dir.as_os_str().to_owned()];
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        // `cargo test`'s default: dependencies with `dev`, tests with `test`.
        Some("debug") => {}
        Some("release") => args.push("--release".into()),
        Some(other) => args.extend(["--profile".into(), other.into()]),
        None => panic!("no profile directory above {}", profile_dir.display()),
    }
    args
}

/// `cargo`, run from the workspace root, in the environment of the build that made this
/// test binary: without the variables the test runner sets for the test's own package
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, `OUT_DIR`, …), which build scripts that watch them
/// (`ring`'s) would take for a change, rebuilding a minute's worth of crates at every
/// nested build.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if RUNNER_PACKAGE_VARS
            .iter()
            .any(|prefix| name_text.starts_with(prefix))
        {
            command.env_remove(&name);
        }
    }
    command
}

/// What cargo sets for a test about its package, by prefix (cargo's own settings, such as
/// `CARGO_HOME` or `CARGO_TERM_COLOR`, are kept).
const RUNNER_PACKAGE_VARS: &[&str] = &[
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_CRATE_",
    "CARGO_BIN_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "OUT_DIR",
];

/// The workspace's executables by target name (`taskscope`, `healthy`, …, and
/// `leaky_tests` for that test target), built once per test process.
pub fn binaries() -> &'static HashMap<String, PathBuf> {
    static BINARIES: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    BINARIES.get_or_init(|| {
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
        assert!(output.status.success(), "building the workspace failed");
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

/// The path of one executable of the workspace, by target name.
fn binary(name: &str) -> &'static Path {
    binaries()
        .get(name)
        .unwrap_or_else(|| panic!("no executable `{name}` was built"))
}

/// The path of an example program (or an examples' test binary).
pub fn example(name: &str) -> &'static Path {
    binary(name)
}

/// The path of the `taskscope` binary.
pub fn taskscope() -> &'static Path {
    binary("taskscope")
}
