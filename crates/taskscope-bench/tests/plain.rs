//! The `plain` mode runs a second build of the harness, without the probe; a harness that
//! cannot find it says how to build it before it measures anything.

use std::process::Command;

#[test]
fn the_plain_mode_without_its_build_is_an_error_saying_how_to_build_it() {
    // A copy of the harness in a target directory of its own, which has no `plain/` build.
    let target = tempfile::tempdir().unwrap();
    let release = target.path().join("release");
    std::fs::create_dir_all(&release).unwrap();
    let copy = release.join("taskscope-bench");
    std::fs::copy(env!("CARGO_BIN_EXE_taskscope-bench"), &copy).unwrap();

    let output = Command::new(&copy)
        .args(["--quick", "--modes", "plain", "--workloads", "spawn"])
        .output()
        .expect("the harness starts");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let expected = target.path().join("plain/release/taskscope-bench");
    assert!(stderr.contains(&*expected.to_string_lossy()), "{stderr}");
    assert!(
        stderr.contains("cargo build --release -p taskscope-bench --no-default-features"),
        "{stderr}"
    );
    assert!(!stderr.contains("rep 1"), "nothing was measured: {stderr}");
}
