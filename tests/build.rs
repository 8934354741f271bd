//! Marks the tests that drive an external program (tmux, Prometheus, Python) as ignored when that
//! program is not installed, outside CI: test runners then count them as skipped, with
//! the reason (nextest's summary says `N skipped`, `cargo test` prints
//! `ignored, needs tmux`), instead of the tests returning early and counting as passed.
//! Under CI (`CI` set, as `.ci/run` runs) nothing is ignored: a missing program fails the
//! tests that need it (`src/tools.rs`).
//!
//! Sets `cfg(missing_<program>)`, which the tests name in
//! `#[cfg_attr(missing_tmux, ignore = "needs tmux")]`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The programs some suites drive, as found on `PATH`.
const PROGRAMS: [&str; 3] = ["tmux", "prometheus", "python3"];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: BTreeSet<PathBuf> = std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute() && dir.is_dir())
        .collect();
    let mut watch_dirs = false;
    for program in PROGRAMS {
        println!("cargo::rustc-check-cfg=cfg(missing_{program})");
        match dirs
            .iter()
            .map(|dir| dir.join(program))
            .find(|p| runnable(p))
        {
            // Removing it brings this script back, to mark its tests again.
            Some(found) => println!("cargo::rerun-if-changed={}", found.display()),
            None => {
                watch_dirs = true;
                if !under_ci() {
                    println!("cargo::rustc-cfg=missing_{program}");
                    println!(
                        "cargo::warning={program} is not installed: the end-to-end tests that \
                         drive it are skipped (counted as ignored); CI runs them"
                    );
                }
            }
        }
    }
    if watch_dirs {
        // Installing a program adds it to one of these directories, which brings this
        // script back, to run its tests.
        for dir in &dirs {
            println!("cargo::rerun-if-changed={}", dir.display());
        }
    }
}

/// Whether `path` is a file anyone may execute.
fn runnable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether this build is CI's: `CI` set to anything but empty, `0` or `false` (CI
/// services set `CI=true`; `.ci/run` sets it too when run by hand).
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.trim(), "" | "0" | "false"))
}
