//! The external programs some suites drive (tmux, Prometheus, Python to read traces back).
//!
//! Whether one is installed is decided when the suites are built (`build.rs`): outside
//! CI, a missing program marks the tests that need it as ignored, so runners count them
//! as skipped. A test that runs needs its program: when it is missing anyway (under CI,
//! with `--run-ignored`, or removed since the build), the test fails, saying what to
//! install; it never returns early as passed.

use std::process::{Command, Stdio};

/// Panics, saying what to install, unless `program` runs (`program version_flag`);
/// `package` is the Debian package that provides it.
pub fn require(program: &str, version_flag: &str, package: &str) {
    let runs = Command::new(program)
        .arg(version_flag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        runs,
        "{program} is not installed, and this test needs it (`apt-get install {package}`; \
         `.ci/run` installs it). Outside CI, a build without it skips the tests that need it"
    );
}
