//! The `plain` and `taskscope-lean` modes run other builds of the harness (without the
//! probe; with the hooks route alone); a harness that cannot find one says how to build it
//! before it measures anything.

use std::process::Command;

#[test]
fn the_plain_mode_without_its_build_is_an_error_saying_how_to_build_it() {
    refused_without_its_build(
        "plain",
        "RUSTFLAGS= cargo build --release -p taskscope-bench --no-default-features \
         --target-dir target/plain",
    );
}

#[test]
fn the_lean_mode_without_its_build_is_an_error_saying_how_to_build_it() {
    refused_without_its_build(
        "taskscope-lean",
        "cargo build --release -p taskscope-bench --no-default-features --features \
         probe-hooks --target-dir target/lean",
    );
}

fn refused_without_its_build(mode: &str, build: &str) {
    // A copy of the harness in a target directory of its own, which has no other build.
    let target = tempfile::tempdir().unwrap();
    let release = target.path().join("release");
    std::fs::create_dir_all(&release).unwrap();
    let copy = release.join("taskscope-bench");
    std::fs::copy(env!("CARGO_BIN_EXE_taskscope-bench"), &copy).unwrap();

    let output = Command::new(&copy)
        .args(["--quick", "--modes", mode, "--workloads", "spawn"])
        .output()
        .expect("the harness starts");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let dir = build.rsplit('/').next().unwrap();
    let expected = target.path().join(dir).join("release/taskscope-bench");
    assert!(stderr.contains(&*expected.to_string_lossy()), "{stderr}");
    assert!(stderr.contains(build), "{stderr}");
    assert!(!stderr.contains("rep 1"), "nothing was measured: {stderr}");
}
