//! A test suite written the way service owners write theirs, under `#[taskscope::test]`:
//! the app's own subscriber installs, its log lines are its own, and a server started per
//! test and stopped by the test leaves nothing behind.

use std::io::Write;
use std::sync::{Arc, Mutex};

use taskscope_examples::service;
use tracing_subscriber::fmt::MakeWriter;

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[taskscope::test]
async fn the_apps_own_logging_installs_under_taskscope_test() {
    service::set_up_logging(None::<tracing_subscriber::layer::Identity>)
        .expect("the probe leaves the global subscriber to the app");
    service::run(Some(2)).await.unwrap();
}

/// On the test's own thread (a `current_thread` runtime runs its tasks there too), with a
/// subscriber of its own, as tests that capture logs do: `cargo test` runs the tests of
/// this file in one process, where only one of them can own the global subscriber.
#[taskscope::test]
async fn the_apps_log_lines_carry_no_span_of_the_probe_or_of_tokio() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_env_filter("info")
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    tokio::spawn(async { tracing::info!("from a task") })
        .await
        .unwrap();
    tracing::info!("from the test");
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for line in lines {
        assert!(
            line.contains(" INFO service_tests: from "),
            "a plain log line, with no span prefix: {line}"
        );
    }
}
