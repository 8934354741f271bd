//! End-to-end: recordings survive a killed process, and a stuck disk never holds the app.

use std::time::{Duration, Instant};

use taskscope_e2e::{Folded, command, single_recording, wait_for};

#[test]
fn a_recording_of_a_sigkilled_process_reads_back_to_its_last_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command("forever")
        .env("TASKSCOPE_RECORD", dir.path())
        .env("TASKSCOPE_PUBLISH_INTERVAL", "20ms")
        .spawn()
        .unwrap();
    // Wait until the recording holds a stall (the program stalls once a second).
    let seen = wait_for(Duration::from_secs(20), || {
        let path = std::fs::read_dir(dir.path()).ok()?.next()?.ok()?.path();
        let recording = taskscope_api::recording::read_all(&path).ok()?;
        recording
            .updates
            .iter()
            .any(|u| !u.stalls.is_empty())
            .then_some(())
    });
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    assert!(seen.is_some(), "the recording never showed a stall");
    let folded = Folded::read(&single_recording(dir.path()));
    assert!(
        !folded.exited,
        "a killed process cannot have marked its recording complete"
    );
    assert!(folded.process.is_some());
    assert!(!folded.stalls.is_empty());
    assert!(folded.spawned_tasks().count() >= 4);
}

#[test]
fn a_recording_that_cannot_be_written_never_holds_the_app_up() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("nobody-reads-this");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let start = Instant::now();
    let mut child = command("healthy")
        .env("TASKSCOPE_RECORD", &fifo)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
    if status.is_none() {
        let _ = child.kill();
        panic!("the app hung behind its recording");
    }
    assert!(status.unwrap().success());
    // The app's own work takes ~0.5 s; the exit waits at most 2 s for the probe.
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
}

/// Tens of thousands of short tasks a second (`churn_at_exit`'s `yield_now` tasks) are
/// counted by spawn site past the first few of each update, and the tallies add up: each
/// of those tasks is polled exactly twice, and each one's id comes once. With
/// `TASKSCOPE_FOLD=off` every task comes one by one.
#[test]
fn short_lived_tasks_are_counted_by_site_and_every_one_of_them_one_by_one_when_asked() {
    let short_site = |folded: &Folded| {
        let task = folded
            .spawned_tasks()
            .filter(|t| {
                t.spawned
                    .location
                    .as_ref()
                    .unwrap()
                    .file
                    .ends_with("churn_at_exit.rs")
            })
            .filter(|t| t.outcome() == Some(taskscope_api::v1::Outcome::Completed))
            .find(|t| {
                let stats = t.ended.as_ref().and_then(|e| e.stats.as_ref());
                stats.is_some_and(|s| s.polls == 2)
            })
            .expect("a short task completed");
        task.location().to_string()
    };
    let (output, folded) = taskscope_e2e::recording::run_recorded("churn_at_exit", &[]);
    assert!(output.status.success());
    let site = short_site(&folded);
    let tally = folded
        .folded
        .get(&site)
        .unwrap_or_else(|| panic!("no tally for {site}: {:?}", folded.folded));
    assert!(tally.tasks > 1_000, "{tally:?}");
    assert_eq!(tally.polls, 2 * tally.tasks, "{tally:?}");
    // Each folded task's id came once, for timelines to name it, and none of them also
    // came one by one.
    assert_eq!(folded.folded_ids.len() as u64, tally.tasks);
    assert!(folded.folded_ids.values().all(|&times| times == 1));
    assert!(
        folded
            .folded_ids
            .keys()
            .all(|id| !folded.tasks.contains_key(id))
    );
    assert_eq!(folded.folded.len(), 1, "{:?}", folded.folded);
    let one_by_one = folded
        .spawned_tasks()
        .filter(|t| t.location().to_string() == site)
        .count();
    assert!(
        one_by_one >= 64,
        "each update still lists the site's first tasks: {one_by_one}"
    );

    let (output, every_task) =
        taskscope_e2e::recording::run_recorded("churn_at_exit", &[("TASKSCOPE_FOLD", "off")]);
    assert!(output.status.success());
    assert!(every_task.folded.is_empty(), "{:?}", every_task.folded);
    let site = short_site(&every_task);
    let one_by_one = every_task
        .spawned_tasks()
        .filter(|t| t.location().to_string() == site)
        .count();
    assert!(one_by_one > 1_000, "{one_by_one}");
}
