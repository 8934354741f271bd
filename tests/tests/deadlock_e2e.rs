//! Deadlocks end to end: `taskscope check` runs example programs whose tasks wait on each
//! other in a cycle (a lock-order inversion, a `JoinHandle` cycle, a semaphore's last
//! permit held by a task joining its waiter) and must report one `deadlock` naming every
//! task in it, with its spawn site, its `.await` line and what it waits on; and programs
//! whose waits only look alike (a contended lock, a long critical section, a cycle a
//! timeout breaks after longer than the threshold, a task waiting on its own channel) must
//! report none.
//!
//! Spawn lines are marked `// FAULT: deadlock` (the cycle's first task) and
//! `// CYCLE: second`; `.await` lines `// WAITS: <which>`.

use std::process::Command;

use serde_json::Value;
use taskscope_e2e::check::{assert_clean_pass, check_example, findings};
use taskscope_e2e::{example, fault_location, location_of_line, taskscope, workspace_root};

fn spawn_of_second(source: &str) -> String {
    location_of_line(source, "// CYCLE: second", "spawn").to_string()
}

fn await_at(source: &str, which: &str) -> String {
    location_of_line(source, &format!("// WAITS: {which}"), "await").to_string()
}

/// The one finding of a failed check, which must be a deadlock; its cycle's tasks.
fn the_deadlock(name: &str) -> (Value, Vec<Value>) {
    let checked = check_example(name, &[]);
    assert_eq!(checked.status, 1, "{:#}", checked.report);
    let [finding] = findings(&checked).as_slice() else {
        panic!("expected one finding: {:#}", checked.report)
    };
    assert_eq!(finding["kind"], "deadlock", "{finding:#}");
    assert_eq!(finding["severity"], "error");
    let cycle = finding["cycle"].as_array().expect("a cycle").clone();
    (finding.clone(), cycle)
}

/// Asserts one task of a cycle: spawned at `spawn`, waiting at `.await` `at` (relative;
/// the debug info holds it absolute), on something described as starting with `on`.
fn assert_task(task: &Value, spawn: &str, at: &str, on: &str) {
    assert_eq!(task["spawn_location"], spawn, "{task:#}");
    let location = task["await_location"].as_str().unwrap_or_default();
    assert!(
        location.ends_with(at),
        "waits at {location}, expected {at}: {task:#}"
    );
    let waits_on = task["waits_on"].as_str().unwrap();
    assert!(
        waits_on.starts_with(on),
        "waits on {waits_on}, expected {on}…"
    );
}

#[test]
fn a_lock_order_inversion_is_one_deadlock_naming_both_tasks_their_await_and_the_lock_held() {
    let source = "src/bin/deadlock_lock_order.rs";
    let (finding, cycle) = the_deadlock("deadlock_lock_order");
    let first = fault_location(source, "deadlock").to_string();
    let second = spawn_of_second(source);
    assert_eq!(finding["spawn_location"], first.as_str());
    let [a, b] = cycle.as_slice() else {
        panic!("{finding:#}")
    };
    let at = await_at(source, "both");
    let lock = "`Mutex` created at crates/taskscope-examples/src/bin/deadlock_lock_order.rs:";
    assert_task(a, &first, &at, lock);
    assert_task(b, &second, &at, lock);
    assert_eq!(a["waits_for"], b["task"]["id"]);
    assert_eq!(b["waits_for"], a["task"]["id"]);
    let held_by_b = format!("held by task {}", b["task"]["id"]);
    assert!(
        a["waits_on"].as_str().unwrap().contains(&held_by_b),
        "{a:#}"
    );
}

#[test]
fn two_tasks_joined_on_each_other_are_a_deadlock() {
    let source = "src/bin/deadlock_join.rs";
    let (_, cycle) = the_deadlock("deadlock_join");
    let [a, b] = cycle.as_slice() else {
        panic!("{cycle:#?}")
    };
    let first = fault_location(source, "deadlock").to_string();
    assert_task(a, &first, &await_at(source, "first"), "the end of task");
    let second = spawn_of_second(source);
    assert_task(b, &second, &await_at(source, "second"), "the end of task");
}

#[test]
fn a_semaphores_last_permit_held_by_a_task_joining_its_waiter_is_a_deadlock() {
    let source = "src/bin/deadlock_semaphore.rs";
    let (_, cycle) = the_deadlock("deadlock_semaphore");
    let [holder, waiter] = cycle.as_slice() else {
        panic!("{cycle:#?}")
    };
    let first = fault_location(source, "deadlock").to_string();
    assert_task(
        holder,
        &first,
        &await_at(source, "first"),
        "the end of task",
    );
    let second = spawn_of_second(source);
    let permit = "`Semaphore` created at crates/taskscope-examples/src/bin/deadlock_semaphore.rs:";
    assert_task(waiter, &second, &await_at(source, "second"), permit);
    let held = format!("held by task {}", holder["task"]["id"]);
    assert!(
        waiter["waits_on"].as_str().unwrap().contains(&held),
        "{waiter:#}"
    );
}

/// tokio's `mpsc` reports nothing of who owns a sender: the task is a leak parked at its
/// `recv().await`, and nothing claims more.
#[test]
fn a_task_waiting_on_a_channel_whose_sender_it_owns_is_a_leak_at_its_await_not_a_deadlock() {
    let source = "src/bin/waits_on_itself.rs";
    let checked = check_example("waits_on_itself", &[]);
    assert_eq!(checked.status, 1, "{:#}", checked.report);
    let [finding] = findings(&checked).as_slice() else {
        panic!("{:#}", checked.report)
    };
    assert_eq!(finding["kind"], "alive_at_shutdown", "{finding:#}");
    let spawn = fault_location(source, "alive_at_shutdown").to_string();
    assert_eq!(finding["spawn_location"], spawn.as_str());
    let at = await_at(source, "itself");
    let parked = finding["waiting_at"].as_array().unwrap();
    assert!(
        parked
            .iter()
            .any(|f| f["location"].as_str().is_some_and(|l| l.ends_with(&at))),
        "{finding:#}"
    );
}

/// Run after run (a false deadlock is worse than a missed one): forty tasks contending one
/// lock, a lock held across 1.5 s of sleep while another task waits, and two tasks in a
/// lock-order inversion that both give up after 1.5 s, past the 1 s threshold.
#[test]
fn contention_a_long_critical_section_and_a_cycle_that_resolves_are_never_a_deadlock() {
    for run in 0..3 {
        let checked = check_example("lock_contention", &[]);
        assert_clean_pass(&checked);
        assert_eq!(checked.report["verdict"], "pass", "run {run}");
    }
}

/// `TASKSCOPE_HOLDERS=off` stops the probe tracking holders: the same inversion is then no
/// deadlock (its two tasks are leaks), and the report says why deadlocks of locks could
/// not be judged.
#[test]
fn with_holder_tracking_off_a_lock_order_inversion_is_no_deadlock_and_a_note_says_why() {
    let output = Command::new(taskscope())
        .args(["check", "--"])
        .arg(example("deadlock_lock_order"))
        .env("TASKSCOPE_HOLDERS", "off")
        .current_dir(workspace_root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(!text.contains("[deadlock]"), "{text}");
    assert!(text.contains("[alive_at_shutdown]"), "{text}");
    assert!(
        text.contains("holder tracking was turned off by TASKSCOPE_HOLDERS=off"),
        "{text}"
    );
    assert!(
        text.contains("only deadlocks of tasks joined through taskscope::join are found"),
        "{text}"
    );
}

#[test]
fn github_annotations_land_on_the_await_of_every_task_in_the_cycle() {
    let source = "src/bin/deadlock_join.rs";
    let output = Command::new(taskscope())
        .args(["check", "--format", "github", "--"])
        .arg(example("deadlock_join"))
        .current_dir(workspace_root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    for which in ["first", "second"] {
        let location = await_at(source, which);
        let (file, line_col) = location.split_once(".rs:").unwrap();
        let line = line_col.split(':').next().unwrap();
        let expected = format!("file={file}.rs,line={line},");
        assert!(
            text.lines().any(|l| l.starts_with("::error")
                && l.contains(&expected)
                && l.contains("title=taskscope deadlock")),
            "no annotation at {location}:\n{text}"
        );
    }
}
