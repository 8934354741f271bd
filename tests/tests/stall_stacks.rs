//! End-to-end: the stack of a stalled thread, captured while it is stalled, names the
//! user's function and the exact line that blocks, and tells blocked from busy.

use taskscope_api::v1::{self, Activity};
use taskscope_e2e::{Folded, fault_location, marked_line, run_recorded};

/// The stall of the task spawned at the example's `FAULT: stall` line.
fn stall_of(example: &str) -> (Folded, v1::Stall) {
    let (output, folded) = run_recorded(example, &[]);
    assert!(output.status.success(), "{output:?}");
    let source = format!("src/bin/{example}.rs");
    let task = folded.task_at(&fault_location(&source, "stall")).spawned.id;
    let stall = folded
        .stalls
        .values()
        .find(|s| s.task_id == task)
        .unwrap_or_else(|| panic!("no stall for the task: {:#?}", folded.stalls))
        .clone();
    (folded, stall)
}

/// Asserts that some sample's shown frames name `function` at `file:line` of the
/// example, and the library call it blocks in (when given).
fn assert_names(example: &str, stall: &v1::Stall, function: &str, blocking_call: Option<&str>) {
    let source = format!("src/bin/{example}.rs");
    let line = marked_line(&source, "BLOCKS");
    let suffix = format!("{source}:{line}");
    assert!(!stall.samples.is_empty(), "no stack was captured");
    for sample in &stall.samples {
        assert!(sample.error.is_empty(), "{}", sample.error);
        let shown: Vec<_> = sample.frames.iter().filter(|f| f.user).collect();
        let user = shown
            .iter()
            .find(|f| f.function.ends_with(function))
            .unwrap_or_else(|| panic!("{function} is not among the shown frames: {shown:#?}"));
        // `file:line:col`: compare `file:line`.
        let location = user
            .location
            .rsplit_once(':')
            .map_or(user.location.as_str(), |(file_line, _)| file_line);
        assert!(
            location.ends_with(&suffix),
            "{function} should be at {suffix}, got {}",
            user.location
        );
        if let Some(call) = blocking_call {
            assert!(
                shown[0].function.contains(call),
                "the innermost shown frame should be the blocking call {call}: {shown:#?}"
            );
        }
    }
}

#[test]
fn a_sleep_in_a_helper_names_the_helper_its_line_and_the_sleep_and_is_blocked() {
    let (_, stall) = stall_of("blocking_sleep");
    assert_names(
        "blocking_sleep",
        &stall,
        "load_config_slowly",
        Some("sleep"),
    );
    assert!(stall.samples.len() >= 2, "{}", stall.samples.len());
    assert_eq!(stall.activity, Activity::Blocked as i32);
}

#[test]
fn a_blocking_file_read_names_the_reader_and_the_read_and_is_blocked() {
    let (_, stall) = stall_of("fifo_read");
    assert_names("fifo_read", &stall, "read_settings", Some("read"));
    assert_eq!(stall.activity, Activity::Blocked as i32);
}

#[test]
fn a_contended_std_mutex_names_the_locker_and_the_lock_and_is_blocked() {
    let (_, stall) = stall_of("mutex_wait");
    assert_names("mutex_wait", &stall, "bump", Some("lock"));
    assert_eq!(stall.activity, Activity::Blocked as i32);
}

#[test]
fn a_cpu_loop_is_busy() {
    let (_, stall) = stall_of("cpu_loop");
    assert!(stall.samples.len() >= 2, "{}", stall.samples.len());
    let named = stall.samples.iter().any(|s| {
        s.frames
            .iter()
            .any(|f| f.user && (f.function.ends_with("crunch") || f.function.ends_with("checksum")))
    });
    assert!(named, "{:#?}", stall.samples);
    assert_eq!(stall.activity, Activity::Busy as i32);
}

#[test]
fn without_stack_capture_the_stall_is_still_reported_and_the_reason_given() {
    let (output, folded) = run_recorded("blocking_sleep", &[("TASKSCOPE_STACKS", "off")]);
    assert!(output.status.success());
    let stall = folded
        .stalls
        .values()
        .next()
        .expect("the stall is reported");
    assert!(stall.samples.is_empty());
    let capture = folded.process.unwrap().stack_capture.unwrap();
    assert!(!capture.enabled);
    assert!(
        capture.unavailable_reason.contains("TASKSCOPE_STACKS"),
        "{capture:?}"
    );
}

#[test]
fn thousands_of_sampled_stalls_neither_crash_nor_hang_nor_corrupt_the_app() {
    let (output, folded) = run_recorded("stall_storm", &[("TASKSCOPE_STALL_THRESHOLD", "1ms")]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("all results correct"));
    let sampled = folded
        .stalls
        .values()
        .filter(|s| s.samples.iter().any(|x| !x.frames.is_empty()))
        .count();
    assert!(folded.stalls.len() >= 100, "{} stalls", folded.stalls.len());
    assert!(sampled >= 100, "{sampled} stalls had stacks");
}
