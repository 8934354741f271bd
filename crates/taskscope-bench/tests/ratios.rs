//! The committed ratios and the docs generated from them, and the guard's answers to bad
//! input. Nothing here measures anything: the guard is only asked what it refuses before
//! it would start measuring.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taskscope-bench"))
        .args(args)
        .output()
        .expect("the harness starts")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_performance_docs_table_is_what_the_committed_ratios_give() {
    let output = bench(&["docs", "--check"]);
    assert!(
        output.status.success(),
        "docs/performance.md is stale; run `cargo run -p taskscope-bench -- docs` and \
         commit the result\n{}",
        text(&output)
    );
}

#[test]
fn a_stale_table_is_found_and_rewritten() {
    let page = std::fs::read_to_string(workspace().join("docs/performance.md")).unwrap();
    let stale = page.replacen(
        "<!-- ratios:end -->",
        "| a row by hand |\n<!-- ratios:end -->",
        1,
    );
    assert_ne!(stale, page, "the page has the ratios markers");
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("performance.md");
    std::fs::write(&doc, &stale).unwrap();
    let doc = doc.to_str().unwrap();

    let check = bench(&["docs", "--check", "--doc", doc]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert!(
        text(&check).contains("taskscope-bench -- docs"),
        "{}",
        text(&check)
    );

    let write = bench(&["docs", "--doc", doc]);
    assert!(write.status.success(), "{}", text(&write));
    assert_eq!(std::fs::read_to_string(doc).unwrap(), page);
}

#[test]
fn a_missing_ratios_file_is_an_error_saying_how_to_record_one() {
    for args in [
        &["guard", "--ratios", "/nonexistent/ratios.json"][..],
        &["docs", "--check", "--ratios", "/nonexistent/ratios.json"][..],
    ] {
        let output = bench(args);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("/nonexistent/ratios.json"), "{stderr}");
        assert!(stderr.contains("guard --bless"), "{stderr}");
        assert!(
            !stderr.contains("[guard "),
            "nothing was measured: {stderr}"
        );
    }
}

#[test]
fn a_malformed_ratios_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratios.json");
    std::fs::write(&path, r#"{"schema": 1, "checks": "#).unwrap();
    let output = bench(&["guard", "--ratios", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a ratios file"), "{stderr}");
    assert!(
        !stderr.contains("[guard "),
        "nothing was measured: {stderr}"
    );
}

#[test]
fn an_unknown_workload_is_refused_naming_the_ones_there_are() {
    let output = bench(&["guard", "--workloads", "pinpong"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("choose from spawn, pingpong"),
        "{}",
        text(&output)
    );
    let output = bench(&["guard", "--workloads", "serve"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("does not measure `serve`"),
        "{}",
        text(&output)
    );
}
