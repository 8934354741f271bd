//! The hooks route under tens of thousands of live tasks: spawns from several threads
//! meet polls of other tasks on the same slots of the probe's task index, and every poll
//! must still be counted for its own task. The example counts each task's polls itself
//! (`task_storm`), so the recording is held to the truth, task by task.

use std::collections::BTreeMap;

use taskscope_e2e::recording::run_recorded;

/// Tasks alive at once: well past the index's 16,384 slots, so that every slot is shared
/// by two or three live tasks.
const TASKS: usize = 45_000;

fn storm_counts_match_the_recording(flavor: &str) {
    let dir = tempfile::tempdir().unwrap();
    let counts_path = dir.path().join("counts");
    let tasks = TASKS.to_string();
    let (output, folded) = run_recorded(
        "task_storm",
        &[
            ("STORM_FLAVOR", flavor),
            ("STORM_TASKS", &tasks),
            ("STORM_COUNTS", counts_path.to_str().unwrap()),
            // Every task, one by one: short-lived ones are otherwise counted by site.
            ("TASKSCOPE_FOLD", "off"),
        ],
    );
    assert!(
        output.status.success(),
        "task_storm failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let truth: BTreeMap<u64, u64> = std::fs::read_to_string(&counts_path)
        .unwrap()
        .lines()
        .map(|line| {
            let (id, polls) = line.split_once(' ').unwrap();
            (id.parse().unwrap(), polls.parse().unwrap())
        })
        .collect();
    assert_eq!(truth.len(), TASKS, "every task reported its polls");

    let mut wrong = Vec::new();
    for (id, &polls) in &truth {
        let recorded = folded
            .tasks
            .get(id)
            .and_then(|task| task.ended.as_ref()?.stats.as_ref().map(|s| s.polls));
        if recorded != Some(polls) {
            wrong.push((*id, polls, recorded));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {TASKS} tasks have wrong poll counts on {flavor}, e.g. (id, polls, recorded) {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

#[test]
fn every_poll_is_counted_for_its_own_task_on_a_multi_thread_runtime() {
    storm_counts_match_the_recording("multi_thread");
}

#[test]
fn every_poll_is_counted_for_its_own_task_on_a_current_thread_runtime() {
    storm_counts_match_the_recording("current_thread");
}
