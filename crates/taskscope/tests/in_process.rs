//! The probe inside the test's own process: started through `Builder::build`, fed by a
//! runtime under the test's subscriber, and stopped by `Probe::shutdown`.
//!
//! One test in this file on purpose: a process has one probe, and this one is stopped.

use std::collections::HashSet;
use std::time::Duration;

use taskscope_api::v1;
use tracing_subscriber::prelude::*;

/// The probe's threads still alive in this process (thread names are cut to 15 bytes).
fn probe_threads() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").unwrap() {
        let comm = entry.unwrap().path().join("comm");
        if let Ok(name) = std::fs::read_to_string(comm)
            && name.starts_with("taskscope-")
        {
            names.push(name.trim().to_owned());
        }
    }
    names
}

#[test]
fn a_probe_records_its_tasks_and_shutdown_flushes_and_joins_its_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in-process.tsrec");
    let (layer, probe) = taskscope::Builder::new()
        .bind("off")
        .record(&path)
        .build()
        .expect("the probe starts");
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..10u64)
                .map(|i| {
                    tokio::spawn(async move { tokio::time::sleep(Duration::from_millis(i)).await })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
    });
    let running = probe_threads();
    assert!(
        running.iter().any(|t| t == "taskscope-probe")
            && running.iter().any(|t| t == "taskscope-watch"),
        "the probe's threads run: {running:?}"
    );

    probe.shutdown();
    assert_eq!(
        probe_threads(),
        Vec::<String>::new(),
        "every probe thread was joined"
    );
    probe.shutdown(); // a second call does nothing

    let recording = taskscope_api::recording::read_all(&path).expect("a complete recording");
    let updates = &recording.updates;
    let ours: HashSet<u64> = updates
        .iter()
        .flat_map(|u| &u.spawned)
        .filter(|s| s.kind == v1::TaskKind::Task as i32)
        .filter(|s| {
            s.location
                .as_ref()
                .is_some_and(|l| l.file.ends_with("in_process.rs"))
        })
        .map(|s| s.id)
        .collect();
    assert_eq!(ours.len(), 10, "the ten tasks spawned in this file");
    let completed = updates
        .iter()
        .flat_map(|u| &u.ended)
        .filter(|e| ours.contains(&e.id) && e.outcome == v1::Outcome::Completed as i32)
        .count();
    assert_eq!(completed, 10, "each of them completed");
    assert!(
        updates.last().is_some_and(|u| u.process_exited),
        "the shutdown's flush is the recording's last update"
    );

    // The process's one probe is the stopped one: a second start gets it, and starts no
    // thread.
    let (_layer, again) = taskscope::Builder::new()
        .bind("off")
        .build::<tracing_subscriber::Registry>()
        .expect("the running probe is returned");
    assert!(format!("{again:?}").contains("stopped: true"), "{again:?}");
    assert_eq!(probe_threads(), Vec::<String>::new());
}
