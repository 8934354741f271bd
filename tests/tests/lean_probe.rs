//! End-to-end on a probe built without its default feature `tracing-route`, with
//! `--cfg tokio_unstable`: tokio then has no `tracing` feature, as in a `#[taskscope::main]`
//! app that leaves it off for speed (`crates/taskscope-examples/lean/`, laid out here as a
//! standalone package with its own target directory under the workspace's `target/`). The
//! hooks route must see what it sees with the default features; the tracing route, which
//! gets no span, must say why and never pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use taskscope_e2e::check::{check, check_args, findings_of_kind};
use taskscope_e2e::{marked_line, workspace_root};

fn examples() -> PathBuf {
    workspace_root().join("crates/taskscope-examples")
}

/// The package's manifest: the probe without its default features.
fn manifest() -> String {
    let probe = workspace_root().join("crates/taskscope");
    format!(
        "[package]\nname = \"taskscope-lean-examples\"\nversion = \"0.0.0\"\n\
         edition = \"2024\"\npublish = false\n\n[workspace]\n\n[dependencies]\n\
         taskscope = {{ path = {probe:?}, default-features = false }}\n\
         tokio = {{ version = \"1\", features = [\"rt-multi-thread\", \"macros\", \"time\"] }}\n"
    )
}

/// Lays the package out and builds it once for the whole suite; returns (package, target).
fn built() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let package = tmp.join("lean-package");
        std::fs::create_dir_all(package.join("src/bin")).unwrap();
        for (from, name) in [
            ("stable/src/bin/stable_stall.rs", "stable_stall.rs"),
            ("lean/src/bin/lean_init.rs", "lean_init.rs"),
        ] {
            std::fs::copy(examples().join(from), package.join("src/bin").join(name)).unwrap();
        }
        // Pinned to the workspace's lock file: nothing resolved anew.
        std::fs::copy(
            workspace_root().join("Cargo.lock"),
            package.join("Cargo.lock"),
        )
        .unwrap();
        std::fs::write(package.join("Cargo.toml"), manifest()).unwrap();
        let target = tmp
            .parent()
            .expect("CARGO_TARGET_TMPDIR is target/tmp")
            .join("lean-probe");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--bins", "--manifest-path"])
            .arg(package.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            // The package is outside the workspace, whose `.cargo/config.toml` sets the cfg.
            .env("RUSTFLAGS", "--cfg tokio_unstable")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the lean examples build");
        (package, target)
    })
}

fn program(name: &str) -> Command {
    let mut command = Command::new(built().1.join("debug").join(name));
    command.env("TASKSCOPE_BIND", "off").env_remove("RUST_LOG");
    command
}

#[test]
fn tokio_is_built_without_its_tracing_feature_here() {
    let (package, _) = built();
    let tree = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "features",
            "-i",
            "tokio",
            "--manifest-path",
        ])
        .arg(package.join("Cargo.toml"))
        .output()
        .expect("cargo runs");
    let text = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.status.success(), "{text}");
    assert!(text.contains("tokio feature \"rt\""), "{text}");
    assert!(!text.contains("tokio feature \"tracing\""), "{text}");
}

#[test]
fn the_hooks_route_sees_the_stall_and_the_leak_as_with_the_default_features() {
    let checked = check(&[], &mut program("stable_stall"));
    assert_eq!(checked.status, 1, "{:#}", checked.report);
    assert_eq!(checked.report["processes"][0]["capability"], "tasks");
    let [stall] = findings_of_kind(&checked, "stall")[..] else {
        panic!("one stall: {:#}", checked.report)
    };
    assert_eq!(stall["severity"], "error");
    let blocks = marked_line("stable/src/bin/stable_stall.rs", "BLOCKS");
    let line = format!("src/bin/stable_stall.rs:{blocks}:");
    taskscope_e2e::check::assert_stack_names(stall, &line);
    let [leak] = findings_of_kind(&checked, "alive_at_shutdown")[..] else {
        panic!("one leak: {:#}", checked.report)
    };
    assert!(
        leak["spawn_location"]
            .as_str()
            .is_some_and(|l| l.starts_with("src/bin/stable_stall.rs:")),
        "the leaked ticker at its spawn location: {leak:#}"
    );
}

#[test]
fn the_tracing_route_gets_no_span_says_why_and_cannot_pass() {
    let lean_init = built().1.join("debug/lean_init");
    let checked = check_args(&["--", lean_init.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&checked.output.stderr);
    assert_eq!(checked.status, 2, "{stderr}");
    let stdout = String::from_utf8_lossy(&checked.output.stdout);
    assert!(stdout.contains("lean_init: done"), "the app ran: {stdout}");
    assert!(
        stderr.contains("without its `tracing-route` feature"),
        "the probe names the cause: {stderr}"
    );
    assert!(stderr.contains("nothing can be judged"), "{stderr}");
}
