//! The case the watchdog exists for: an async fn that blocks a tokio worker thread.

use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

use taskscope_stack::{Activity, Sampler, Symbolizer, ThreadTarget, classify, user_frames};

mod support;
use support::wait_until_blocked;

/// Far longer than the test: the worker is left blocked when the test ends (the runtime
/// is shut down without waiting for it), rather than trusted to still be blocked after a
/// shorter sleep.
const BLOCKED_FOR: Duration = Duration::from_secs(3600);

async fn handle_request(report: Sender<(ThreadTarget, u32)>) {
    let me = Sampler::current_thread();
    report.send((me, line!() + 1)).unwrap();
    std::thread::sleep(BLOCKED_FOR); // blocking call in async code
    tokio::task::yield_now().await;
}

#[test]
fn blocking_call_in_an_async_fn_on_a_tokio_worker() {
    let sampler = Sampler::install().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let (tx, rx) = channel();
    rt.spawn(handle_request(tx));
    let (worker, line) = rx.recv().unwrap();
    wait_until_blocked(worker.tid(), "sleep");

    let mut sym = Symbolizer::new();
    let mut samples = Vec::new();
    for _ in 0..2 {
        let addrs = sampler.sample(&worker, Duration::from_secs(5)).unwrap();
        samples.push(sym.symbolize(&addrs));
        std::thread::sleep(Duration::from_millis(50));
    }
    let full: String = samples[0].iter().map(|f| format!("  {f}\n")).collect();
    let shown = user_frames(&samples[0]);
    let listed: String = shown.iter().map(|f| format!("  {f}\n")).collect();
    let context = format!("full:\n{full}shown:\n{listed}");

    assert!(shown[0].function.contains("sleep"), "{context}");
    let ours = &shown[1];
    assert!(
        ours.file
            .as_deref()
            .is_some_and(|f| f.ends_with("tests/tokio_worker.rs")),
        "{context}"
    );
    assert_eq!(ours.line, Some(line), "{context}");
    // Everything after the blocking call is this file's code: the runtime is hidden.
    assert!(
        shown[1..].iter().all(|f| f
            .file
            .as_deref()
            .is_some_and(|f| f.ends_with("tests/tokio_worker.rs"))),
        "{context}"
    );
    assert!(
        samples[0].iter().any(|f| f.function.contains("tokio")),
        "the full stack goes through the runtime\n{context}"
    );
    assert_eq!(classify(&samples), Some(Activity::Blocked), "{context}");
    rt.shutdown_background();
}
