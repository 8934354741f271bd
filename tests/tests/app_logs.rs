//! `taskscope::init()` also gives the app its log output, filtered by `RUST_LOG`.

use taskscope_e2e::command;

fn stderr_of(rust_log: Option<&str>) -> String {
    let mut command = command("healthy");
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_apps_info_events_are_logged_by_default_and_debug_ones_are_not() {
    let stderr = stderr_of(None);
    assert!(stderr.contains("echo server listening"), "{stderr}");
    assert!(!stderr.contains("a debug line"), "{stderr}");
    assert!(
        !stderr.contains("runtime.spawn"),
        "tokio's task spans stay out of the log: {stderr}"
    );
}

#[test]
fn rust_log_selects_what_the_app_logs() {
    let debug = stderr_of(Some("healthy=debug"));
    assert!(debug.contains("a debug line"), "{debug}");
    let quiet = stderr_of(Some("off"));
    assert!(!quiet.contains("echo server listening"), "{quiet}");
}
