//! End-to-end: an app built without `--cfg tokio_unstable` runs normally, and the probe
//! says, on stderr and in its stream, that it cannot see tasks and how to fix it.

use std::path::{Path, PathBuf};
use std::process::Command;

use taskscope_api::v1::Instrumentation;
use taskscope_e2e::{Folded, single_recording, workspace_root};

/// Lays out a standalone package (outside the workspace, so none of its settings apply)
/// around `crates/taskscope-examples/uninstrumented/main.rs`, pinned to the workspace's lock file so that it builds
/// the same dependency versions without resolving anything anew.
fn uninstrumented_package() -> PathBuf {
    let workspace = workspace_root();
    let package = Path::new(env!("CARGO_TARGET_TMPDIR")).join("uninstrumented-package");
    std::fs::create_dir_all(package.join("src")).unwrap();
    std::fs::copy(
        workspace.join("crates/taskscope-examples/uninstrumented/main.rs"),
        package.join("src/main.rs"),
    )
    .unwrap();
    std::fs::copy(workspace.join("Cargo.lock"), package.join("Cargo.lock")).unwrap();
    let probe = workspace.join("crates/taskscope");
    let manifest = format!(
        "[package]\nname = \"taskscope-uninstrumented-example\"\nversion = \"0.0.0\"\n\
         edition = \"2024\"\npublish = false\n\n[workspace]\n\n[dependencies]\n\
         taskscope = {{ path = {probe:?} }}\n\
         tokio = {{ version = \"1\", features = [\"rt-multi-thread\", \"macros\", \"time\", \
         \"net\", \"io-util\"] }}\n"
    );
    std::fs::write(package.join("Cargo.toml"), manifest).unwrap();
    package
}

#[test]
fn an_app_built_without_tokio_unstable_is_told_so_not_shown_an_empty_screen() {
    let package = uninstrumented_package();
    // Shared with the `stable_tokio` suite (same dependencies, same features, same
    // `RUSTFLAGS`): one build of the probe without the cfg for both.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is target/tmp")
        .join("stable-tokio");
    let build = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(package.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        // Overrides the workspace's `build.rustflags` (which turn tokio_unstable on).
        .env("RUSTFLAGS", "")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(build.success(), "the uninstrumented example builds");

    let recordings = tempfile::tempdir().unwrap();
    let output = Command::new(target.join("debug/taskscope-uninstrumented-example"))
        .env("TASKSCOPE_BIND", "off")
        .env("TASKSCOPE_RECORD", recordings.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "the app itself runs: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--cfg tokio_unstable") && stderr.contains("rustflags"),
        "stderr explains the cause and the fix: {stderr}"
    );
    assert_eq!(
        stderr.matches("tokio_unstable`, so tokio").count(),
        1,
        "said once: {stderr}"
    );
    let folded = Folded::read(&single_recording(recordings.path()));
    let process = folded.process.expect("the recording names the process");
    assert_eq!(process.instrumentation, Instrumentation::Missing as i32);
    assert!(folded.tasks.is_empty());
}
