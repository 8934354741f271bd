//! End-to-end: the flight recorder's window around a stall, as a recording keeps it, holds
//! what every worker did before and during the stall, and the wake that led to it.

use taskscope_api::flight::{FlightEvent, events};
use taskscope_api::v1::{self, FlightEventKind as Kind};
use taskscope_e2e::{Folded, fault_location, location_of_line, run_recorded};

const SOURCE: &str = "src/bin/flight_stall.rs";

/// The example run once, recorded with wakes on; its stall; the stalled, ticking and waking
/// tasks' ids.
fn recorded_stall(envs: &[(&str, &str)]) -> (Folded, v1::Stall, [u64; 3]) {
    let (output, folded) = run_recorded("flight_stall", envs);
    assert!(output.status.success(), "{output:?}");
    let stalled = folded.task_at(&fault_location(SOURCE, "stall")).spawned.id;
    let ticker = (folded
        .task_at(&location_of_line(SOURCE, "// TICKS", "spawn"))
        .spawned)
        .id;
    let waker = (folded
        .task_at(&location_of_line(SOURCE, "// WAKES", "spawn"))
        .spawned)
        .id;
    let stall = folded
        .stalls
        .values()
        .find(|s| s.task_id == stalled)
        .unwrap_or_else(|| panic!("no stall of the task: {:#?}", folded.stalls))
        .clone();
    (folded, stall, [stalled, ticker, waker])
}

/// Every thread's events in the stall's window, by thread number.
fn window_events(stall: &v1::Stall) -> Vec<(u32, Vec<FlightEvent>)> {
    let window = stall
        .flight
        .as_ref()
        .expect("the ended stall carries a window");
    window
        .threads
        .iter()
        .map(|t| (t.thread, events(window, t).collect()))
        .collect()
}

#[test]
fn a_stalls_window_shows_the_stalled_poll_its_neighbours_and_the_wake_before_it() {
    let (_, stall, [stalled, ticker, waker]) = recorded_stall(&[("TASKSCOPE_WAKERS", "on")]);
    let window = stall
        .flight
        .as_ref()
        .expect("the ended stall carries a window");
    assert_eq!(window.to_ns, stall.poll_started_ns + stall.duration_ns);
    assert!(window.from_ns < stall.poll_started_ns);
    let threads = window_events(&stall);

    // The stalled poll, on the stall's thread, from its start to its end.
    let (_, on_stalled_thread) = threads
        .iter()
        .find(|(number, _)| *number == stall.thread)
        .expect("the stalled thread is in the window");
    let start = on_stalled_thread
        .iter()
        .find(|e| e.kind == Kind::FlightEventPollStart && e.at_ns == stall.poll_started_ns)
        .expect("the stalled poll's start");
    assert_eq!(start.task_id, stalled);
    assert!(
        on_stalled_thread
            .iter()
            .any(|e| e.kind == Kind::FlightEventPollEnd
                && e.task_id == stalled
                && e.at_ns == window.to_ns),
        "the stalled poll's end"
    );

    // The neighbour kept polling meanwhile, on another thread.
    let ticks_during_stall = threads
        .iter()
        .filter(|(number, _)| *number != stall.thread)
        .flat_map(|(_, events)| events)
        .filter(|e| {
            e.kind == Kind::FlightEventPollStart
                && e.task_id == ticker
                && (stall.poll_started_ns..window.to_ns).contains(&e.at_ns)
        })
        .count();
    assert!(
        ticks_during_stall >= 5,
        "{ticks_during_stall} ticks beside the stall"
    );

    // The waking task woke the stalled one, before its stalled poll.
    let wake = threads
        .iter()
        .flat_map(|(_, events)| events)
        .find(|e| e.kind == Kind::FlightEventWake && e.task_id == stalled)
        .expect("the wake of the stalled task");
    assert_eq!(
        wake.other_task_id, waker,
        "woken from the waking task's poll"
    );
    assert!(wake.at_ns <= stall.poll_started_ns);

    // Its spawn is there, and nothing was lost.
    assert!(
        threads
            .iter()
            .flat_map(|(_, events)| events)
            .any(|e| e.kind == Kind::FlightEventSpawn && e.task_id == stalled)
    );
    assert!(window.threads.iter().all(|t| t.overflowed == 0));
}

#[test]
fn with_the_recorder_off_no_window_is_kept() {
    let (_, stall, _) = recorded_stall(&[("TASKSCOPE_FLIGHT", "off")]);
    assert!(stall.flight.is_none());
}

/// `recording` exported to Perfetto's format at `trace`, read back by the independent
/// reader.
fn exported(recording: &std::path::Path, trace: &std::path::Path) -> serde_json::Value {
    let export = std::process::Command::new(taskscope_e2e::taskscope())
        .args(["export", "--perfetto"])
        .arg(recording)
        .arg("-o")
        .arg(trace)
        .output()
        .unwrap();
    assert!(export.status.success(), "{export:?}");
    taskscope_e2e::read_trace(trace)
}

/// The task id in a decoded slice or flow end.
fn task_of(value: &serde_json::Value) -> Option<u64> {
    value.as_u64()
}

#[test]
#[cfg_attr(missing_python3, ignore = "needs python3")]
fn the_perfetto_export_reads_back_with_a_track_per_thread_the_stall_and_the_wake_arrow() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = taskscope_e2e::command("flight_stall");
    command
        .env("TASKSCOPE_RECORD", dir.path())
        .env("TASKSCOPE_WAKERS", "on");
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let recording = taskscope_e2e::single_recording(dir.path());
    let folded = Folded::read(&recording);
    let stalled = folded.task_at(&fault_location(SOURCE, "stall")).spawned.id;
    let ticker = (folded
        .task_at(&location_of_line(SOURCE, "// TICKS", "spawn"))
        .spawned)
        .id;
    let waker = (folded
        .task_at(&location_of_line(SOURCE, "// WAKES", "spawn"))
        .spawned)
        .id;
    let stall = folded
        .stalls
        .values()
        .find(|s| s.task_id == stalled)
        .unwrap();

    let read = exported(&recording, &dir.path().join("app.trace.json"));

    // A track per recorded thread, named after it.
    let threads = read["threads"].as_object().unwrap();
    let window = stall.flight.as_ref().unwrap();
    for thread in &window.threads {
        let name = threads[&thread.thread.to_string()].as_str().unwrap();
        assert!(name.starts_with(&thread.name), "{name}");
    }

    // The stall: a slice on its thread as long as the stall, with its stack.
    let slices = read["slices"].as_array().unwrap();
    let stall_slice = slices
        .iter()
        .find(|s| s["cat"] == "stall")
        .expect("a stall slice");
    assert_eq!(stall_slice["tid"].as_u64(), Some(u64::from(stall.thread)));
    let dur_us = stall_slice["dur"].as_f64().unwrap();
    assert!(
        (dur_us - stall.duration_ns as f64 / 1_000.0).abs() < 1.0,
        "{dur_us}"
    );
    let stack = stall_slice["args"]["stack"].as_str().unwrap();
    assert!(stack.contains("render_report"), "{stack}");
    let site = format!("flight_stall.rs:{}", fault_location(SOURCE, "stall").line);
    assert!(stall_slice["name"].as_str().unwrap().contains(&site));

    // Polls named by spawn site, the neighbour's on another track during the stall.
    let stalled_polls = slices
        .iter()
        .filter(|s| s["cat"] == "poll" && task_of(&s["args"]["task_id"]) == Some(stalled));
    assert!(
        stalled_polls.clone().count() >= 2,
        "its wait, then the stall"
    );
    assert!(
        stalled_polls
            .clone()
            .all(|s| s["name"].as_str().unwrap().contains(&site))
    );
    let start_us = stall.poll_started_ns as f64 / 1_000.0;
    let beside = slices
        .iter()
        .filter(|s| s["cat"] == "poll" && task_of(&s["args"]["task_id"]) == Some(ticker))
        .filter(|s| s["tid"].as_u64() != Some(u64::from(stall.thread)))
        .filter(|s| s["ts"].as_f64().unwrap() >= start_us)
        .count();
    assert!(beside >= 5, "{beside} ticks beside the stall");

    // The wake arrow leads from the waking task's poll to the stalled poll, and a spawn
    // arrow to the stalled task's first poll.
    let flows = read["flows"].as_array().unwrap();
    let wake = flows
        .iter()
        .find(|f| f["name"] == "wake" && task_of(&f["to_task"]) == Some(stalled))
        .expect("a wake arrow to the stalled task");
    assert_eq!(task_of(&wake["from_task"]), Some(waker));
    assert!((wake["to_ts"].as_f64().unwrap() - start_us).abs() < 0.01);
    assert!(
        flows
            .iter()
            .any(|f| f["name"] == "spawn" && task_of(&f["to_task"]) == Some(stalled))
    );

    // The stalled task's life, as an async slice.
    let lives = read["lives"].as_array().unwrap();
    assert!(
        lives
            .iter()
            .any(|l| task_of(&l["task_id"]) == Some(stalled))
    );

    // Every thread's busy share over the whole recording, not only the stall's window.
    assert_busy_counters(&read);
}

#[test]
#[cfg_attr(missing_python3, ignore = "needs python3")]
fn check_with_a_trace_dir_writes_the_stalls_timeline_and_names_it_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("traces");
    let checked = taskscope_e2e::check::check_example(
        "flight_stall",
        &["--trace-dir", traces.to_str().unwrap()],
    );
    assert_eq!(checked.status, 1, "the stall fails the check");
    let findings = taskscope_e2e::check::findings(&checked);
    let stall = findings
        .iter()
        .find(|f| f["kind"] == "stall")
        .expect("a stall finding");
    let trace = std::path::PathBuf::from(stall["trace"].as_str().expect("the trace is named"));
    assert!(trace.starts_with(&traces), "{}", trace.display());
    let read = taskscope_e2e::read_trace(&trace);
    let stall_slices: Vec<_> = read["slices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["cat"] == "stall")
        .collect();
    assert_eq!(stall_slices.len(), 1, "one stall per file");
    assert_eq!(
        stall_slices[0]["args"]["task_id"], stall["task"]["id"],
        "the finding's own stall"
    );
    assert!(read["threads"].as_object().unwrap().len() >= 2);
}

/// `taskscope export` of a live probe, with `adjust` setting the app up.
fn export_live(
    adjust: impl FnOnce(&mut std::process::Command),
) -> (std::process::Output, tempfile::TempDir) {
    let app = taskscope_e2e::Served::start("forever", adjust);
    let ticks = location_of_line("src/bin/forever.rs", "loop {", "spawn");
    app.wait_for_live_tasks(&ticks, 4);
    // Long enough for a 150 ms poll of the once-a-second task inside the span asked for.
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    let dir = tempfile::tempdir().unwrap();
    let export = std::process::Command::new(taskscope_e2e::taskscope())
        .args(["export", "--perfetto", "--span", "2s", "-o"])
        .arg(dir.path().join("now.trace.json"))
        .arg(format!("127.0.0.1:{}", app.port))
        .env("TASKSCOPE_TOKEN", taskscope_e2e::TOKEN)
        .output()
        .unwrap();
    drop(app.running.stop());
    (export, dir)
}

#[test]
#[cfg_attr(missing_python3, ignore = "needs python3")]
fn export_of_a_live_probe_writes_the_last_seconds_of_every_thread_stall_or_not() {
    let (export, dir) = export_live(|_| {});
    assert!(export.status.success(), "{export:?}");
    let stderr = String::from_utf8_lossy(&export.stderr);
    assert!(stderr.contains("the last 2.0 s of"), "{stderr}");
    let read = taskscope_e2e::read_trace(&dir.path().join("now.trace.json"));

    let slices = read["slices"].as_array().unwrap();
    assert!(
        slices.iter().all(|s| s["cat"] == "poll"),
        "no stall of the window is asked for: {slices:?}"
    );
    let span_us = 2_000_000.0;
    let (first, last) = slices.iter().fold((f64::MAX, 0f64), |(lo, hi), s| {
        let ts = s["ts"].as_f64().unwrap();
        (lo.min(ts), hi.max(ts + s["dur"].as_f64().unwrap()))
    });
    assert!(last - first <= span_us + 1.0, "{first}..{last}");
    // The tickers' polls (every 20–50 ms), named by their spawn site.
    let tick_site = format!(
        "forever.rs:{}",
        location_of_line("src/bin/forever.rs", "loop {", "spawn").line
    );
    let ticks = slices
        .iter()
        .filter(|s| s["name"].as_str().unwrap().contains(&tick_site))
        .count();
    assert!(ticks >= 20, "{ticks} polls of the tickers in 2 s");
    // The once-a-second 150 ms poll, drawn as long as it blocked its thread.
    let long = slices
        .iter()
        .filter(|s| s["dur"].as_f64().unwrap() >= 100_000.0)
        .count();
    assert!(long >= 1, "a blocking poll in 2 s: {slices:?}");
    assert!(!read["threads"].as_object().unwrap().is_empty());
    // Each thread's busy share, from the window's polls: the 150 ms poll fills whole
    // 20 ms buckets of its thread.
    assert_busy_counters(&read);
    let full = read["counters"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|points| points.as_array().unwrap())
        .any(|p| p["value"].as_f64().unwrap() >= 100.0);
    assert!(
        full,
        "a bucket inside the blocking poll: {:?}",
        read["counters"]
    );
}

/// The trace has a busy-share counter for at least one thread, in percent, that was above 0
/// at some point and ends at 0.
fn assert_busy_counters(read: &serde_json::Value) {
    let counters = read["counters"].as_object().unwrap();
    let busy: Vec<_> = counters
        .iter()
        .filter(|(name, _)| name.starts_with("busy % "))
        .collect();
    assert!(!busy.is_empty(), "no busy counter: {counters:?}");
    for (name, points) in &busy {
        let values: Vec<f64> = points
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["value"].as_f64().unwrap())
            .collect();
        assert!(
            values.iter().all(|v| (0.0..=100.0).contains(v)),
            "{name}: {values:?}"
        );
        assert_eq!(values.last(), Some(&0.0), "{name} ends at 0: {values:?}");
    }
    assert!(
        busy.iter()
            .flat_map(|(_, points)| points.as_array().unwrap())
            .any(|p| p["value"].as_f64().unwrap() > 0.0),
        "some thread was busy: {busy:?}"
    );
}

#[test]
fn export_of_a_live_probe_with_its_recorder_off_says_so() {
    let (export, _dir) = export_live(|command| {
        command.env("TASKSCOPE_FLIGHT", "off");
    });
    assert_eq!(export.status.code(), Some(2), "{export:?}");
    let stderr = String::from_utf8_lossy(&export.stderr);
    assert!(stderr.contains("TASKSCOPE_FLIGHT=off"), "{stderr}");
}

/// The body of `#[tokio::main]` that calls `taskscope::init()` is watched from outside,
/// where no poll hook marks it: its runs still reach the flight recorder, so the thread's
/// activity (the dashboard's Timeline) shows it busy through its blocking sleep, and the
/// stall's window holds the run around the stall.
#[test]
fn a_body_watched_from_outside_is_busy_on_its_threads_timeline_and_in_its_stalls_window() {
    let (output, folded) = run_recorded("body_stall", &[]);
    assert!(output.status.success(), "{output:?}");
    let body = folded
        .tasks
        .values()
        .find(|t| t.spawned.kind == v1::TaskKind::BlockOn as i32 && t.spawned.name == "main")
        .unwrap_or_else(|| panic!("the body as a task: {:#?}", folded.tasks))
        .spawned
        .id;
    let stall = folded
        .stalls
        .values()
        .find(|s| s.task_id == body)
        .unwrap_or_else(|| panic!("the body's stall: {:#?}", folded.stalls));
    let stall_end = stall.poll_started_ns + stall.duration_ns;

    // Busy all through the stall on the body's thread, the body taking the time.
    let busy_in_stall: u64 = (folded.activity.iter())
        .filter(|a| a.thread == stall.thread)
        .flat_map(|a| {
            let from_ns = a.from_ns;
            let width = a.bucket_ns;
            (a.busy_ns.iter().zip(&a.top_task).enumerate())
                .map(move |(i, (&busy, &top))| (from_ns + i as u64 * width, busy, top))
        })
        .filter(|&(start, _, _)| start >= stall.poll_started_ns && start < stall_end)
        .map(|(_, busy, top)| {
            assert_eq!(top, body, "the body took its thread's time");
            busy
        })
        .sum();
    assert!(
        busy_in_stall * 10 >= stall.duration_ns * 8,
        "{busy_in_stall} ns busy in a {} ns stall: {:#?}",
        stall.duration_ns,
        folded.activity
    );

    // The stall's window holds the run, from its start to its end.
    let on_thread = window_events(stall)
        .into_iter()
        .find(|(number, _)| *number == stall.thread)
        .map(|(_, events)| events)
        .expect("the body's thread is in the window");
    let of_body = |kind| {
        on_thread
            .iter()
            .any(|e| e.kind == kind && e.task_id == body)
    };
    assert!(of_body(Kind::FlightEventPollStart), "{on_thread:#?}");
    assert!(of_body(Kind::FlightEventPollEnd), "{on_thread:#?}");
}

const BUSY_SOURCE: &str = "src/bin/flight_busy_stall.rs";

/// Workers far busier than their rings between two copies, then a stall on one of them
/// while the other bounces on: the window still holds the stalled worker's last events,
/// right up to the stalled poll's start, and counts the older ones its ring wrote over;
/// the other worker's oldest events are what the window's budget leaves out, and its
/// track says from where it is complete. (A ring that refused events once full kept the
/// first ones after each copy instead, and lost the stalled poll's start; a history and a
/// window that dropped the oldest events of all lost the stalled worker's, the oldest.)
#[test]
#[cfg_attr(missing_python3, ignore = "needs python3")]
fn a_busy_workers_window_keeps_what_it_did_right_up_to_the_stall() {
    let dir = tempfile::tempdir().unwrap();
    let output = taskscope_e2e::command("flight_busy_stall")
        .env("TASKSCOPE_RECORD", dir.path())
        .env("TASKSCOPE_FLIGHT", "2MiB")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let recording = taskscope_e2e::single_recording(dir.path());
    let folded = Folded::read(&recording);
    let stalled = folded
        .task_at(&fault_location(BUSY_SOURCE, "stall"))
        .spawned
        .id;
    let stall = folded
        .stalls
        .values()
        .find(|s| s.task_id == stalled)
        .unwrap_or_else(|| panic!("no stall of the task: {:#?}", folded.stalls));
    let window = stall.flight.as_ref().expect("the stall carries a window");
    let thread = window
        .threads
        .iter()
        .find(|t| t.thread == stall.thread)
        .expect("the stalled thread is in the window");
    assert!(
        thread.overflowed > 0,
        "the worker lapped its ring: it was busy before the stall"
    );
    let on_thread: Vec<FlightEvent> = events(window, thread).collect();
    let start = on_thread
        .iter()
        .position(|e| {
            e.kind == Kind::FlightEventPollStart
                && e.task_id == stalled
                && e.at_ns == stall.poll_started_ns
        })
        .expect("the stalled poll's start, the last event before the stall");
    let before = start
        .checked_sub(1)
        .map(|at| &on_thread[at])
        .expect("what the worker did just before");
    assert_eq!(before.kind, Kind::FlightEventPollEnd, "{before:?}");
    assert!(before.at_ns <= stall.poll_started_ns);

    let other = window
        .threads
        .iter()
        .find(|t| t.thread != stall.thread && events(window, t).count() > 100)
        .expect("the other worker, bouncing on");
    assert!(
        events(window, other).any(|e| e.at_ns > stall.poll_started_ns),
        "it polled during the stall"
    );
    assert!(window.events_left_out > 0, "more than the window holds");
    assert!(
        other.complete_from_ns > window.from_ns,
        "its earlier events left out, and said so"
    );

    // The exported picture says so too, and draws no poll of it before then.
    let read = exported(&recording, &dir.path().join("busy.trace.json"));
    let complete_from_us = other.complete_from_ns as f64 / 1_000.0;
    let marker = read["instants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["cat"] == "left_out" && i["tid"].as_u64() == Some(u64::from(other.thread)))
        .expect("a marker where the other worker's events begin");
    assert!((marker["ts"].as_f64().unwrap() - complete_from_us).abs() < 1.0);
    let early_polls = read["slices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["cat"] == "poll" && s["tid"].as_u64() == Some(u64::from(other.thread)))
        .filter(|s| s["ts"].as_f64().unwrap() < complete_from_us - 1.0)
        .count();
    assert_eq!(early_polls, 0, "a poll drawn where nothing is known");
}
