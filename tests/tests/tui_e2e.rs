//! The dashboard end to end: the real `taskscope` binary in a real terminal (tmux),
//! attached to the real example programs of `crates/taskscope-examples`, driven by keys,
//! read back from the screen.
//!
//! Each test runs its own tmux server (`tmux -L <unique name>`), so tests run in parallel
//! and never touch the user's sessions. Without tmux they are skipped, counted as
//! ignored (`needs tmux`), outside CI, and fail under CI (`.ci/run` installs it):
//! `src/tools.rs`.
//!
//! Timing: the only timing assertion is that a stall shows up on screen within 2 s of it
//! starting; every other wait has a wide margin.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use taskscope_e2e::tmux::{PROMPT, Tmux, tab_count};
use taskscope_e2e::{PATIENCE, Running, command, example, taskscope};

/// An example program serving its probe on a Unix socket; killed when dropped.
struct App {
    running: Running,
}

impl App {
    fn start(name: &str, socket: &Path) -> Self {
        let mut command = command(name);
        command
            .env("TASKSCOPE_BIND", format!("unix:{}", socket.display()))
            .env("TASKSCOPE_WAKERS", "on")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Self {
            running: Running::spawn(&mut command),
        }
    }
}

/// The dashboard in a `width` × `height` terminal, attached to the probe at `socket`
/// (which need not exist yet: the dashboard waits for it).
fn attach(width: u16, height: u16, socket: &Path) -> Tmux {
    let tmux = Tmux::start(width, height);
    tmux.run(&format!(
        "{} attach unix:{}",
        taskscope().display(),
        socket.display()
    ));
    tmux
}

/// The dashboard has quit: the shell's prompt is back, the alternate screen is gone and
/// none of the dashboard is left on the screen.
fn assert_terminal_restored(tmux: &Tmux) {
    let screen = tmux.wait_for("the prompt after quitting", |screen| {
        screen.lines().filter(|l| l.starts_with(PROMPT)).count() >= 2 && !screen.contains("Tasks (")
    });
    assert!(
        !tmux.alternate_screen(),
        "still on the alternate screen:\n{screen}"
    );
    // Raw mode off: a typed line is echoed and run by the shell as usual.
    tmux.run("echo restored-$((40 + 2))");
    tmux.wait_for("the shell answering", |screen| {
        screen.contains("restored-42")
    });
}

#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn a_stall_shows_up_flagged_in_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("app.sock");
    let tmux = attach(100, 30, &socket);
    tmux.wait_for("the dashboard waiting for the app", |s| {
        s.contains("waiting for")
    });
    // blocking_sleep waits 500 ms for a watcher, then blocks its worker for 600 ms.
    // How soon it shows is the benchmarks' business, not a test's (a loaded machine can
    // delay the app's own start by seconds): the deadline only bounds a hung dashboard.
    let _app = App::start("blocking_sleep", &socket);
    let screen = tmux
        .wait_within(Duration::from_secs(30), "the stall", |s| {
            tab_count(s, "Stalls").is_some_and(|n| n >= 1)
        })
        .unwrap_or_else(|screen| panic!("the stall never showed: {screen}"));
    // The stalled task is flagged in words in the table, with its stall's length so far
    // (now or before, depending on timing).
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("STALL ") && l.contains("sleep.rs:")),
        "no flagged row:\n{screen}"
    );
    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
}

#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn attach_filter_sort_details_views_and_quit() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("app.sock");
    // `forever` stalls 150 ms every second until killed.
    let _app = App::start("forever", &socket);
    let tmux = attach(120, 36, &socket);
    tmux.wait_for("the live view", |s| {
        s.contains("● live") && s.contains("forever")
    });
    tmux.wait_for("a stall", |s| {
        tab_count(s, "Stalls").is_some_and(|n| n >= 1)
    });

    // Filter by the stalling spawn site: only its tasks are left.
    tmux.keys(&["/"]);
    tmux.keys(&["-l", "forever.rs:18"]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the filtered table", |s| {
        s.contains("filter \"forever.rs:18\"") && s.contains("forever.rs:18")
    });
    let rows: Vec<&str> = screen
        .lines()
        .skip(4)
        .filter(|l| l.contains("forever.rs:"))
        .collect();
    assert!(!rows.is_empty(), "{screen}");
    assert!(
        rows.iter().all(|l| l.contains("forever.rs:18")),
        "a row that does not match:\n{screen}"
    );

    // Sort by the next column (ID, ascending), then invert it.
    tmux.keys(&["s"]);
    tmux.wait_for("the ID sort", |s| s.contains("ID▲"));
    tmux.keys(&["i"]);
    tmux.wait_for("the inverted sort", |s| s.contains("ID▼"));

    // Details of the selected task, then back.
    tmux.keys(&["Enter"]);
    let details = tmux.wait_for("task details", |s| {
        s.contains("Spawned") && s.contains("Poll time")
    });
    assert!(details.contains("forever.rs:18"), "{details}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the table again", |s| s.contains("Spawned at"));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the filter cleared", |s| !s.contains("filter \""));

    // Every view.
    tmux.keys(&["2"]);
    tmux.wait_for("the stalls view", |s| {
        s.contains("Duration") && s.contains("forever.rs:18")
    });
    tmux.keys(&["3"]);
    tmux.wait_for("the leaks view", |s| s.contains("Trend"));
    tmux.keys(&["4"]);
    tmux.wait_for("the runtime view", |s| s.contains("blocking pool"));
    tmux.keys(&["?"]);
    tmux.wait_for("the help", |s| s.contains("keys (any key closes)"));
    tmux.keys(&["Escape"]);
    tmux.keys(&["1"]);
    tmux.wait_for("the tasks view", |s| s.contains("Flag"));

    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
}

#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn a_restarted_target_gets_a_fresh_view_and_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("app.sock");
    let first = App::start("forever", &socket);
    let first_pid = first.running.pid();
    let tmux = attach(120, 30, &socket);
    tmux.wait_for("the first run", |s| {
        s.contains(&format!("pid {first_pid} "))
    });
    drop(first);
    tmux.wait_for("the disconnection", |s| s.contains("disconnected"));
    let _ = std::fs::remove_file(&socket);
    let second = App::start("forever", &socket);
    let second_pid = second.running.pid();
    // The notice is in the footer, drawn after the header: waiting for the header alone
    // can catch a frame half written.
    let notice = format!("the target restarted (pid {first_pid} → {second_pid})");
    tmux.wait_for("the second run, with a notice of the restart", |s| {
        s.contains(&format!("pid {second_pid} ")) && s.contains("● live") && s.contains(&notice)
    });
    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
}

#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn replay_jumps_to_the_stall_of_a_recording() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("blocking_sleep.tsrec");
    let status = Command::new(example("blocking_sleep"))
        .env("TASKSCOPE_BIND", "off")
        .env("TASKSCOPE_RECORD", &recording)
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .stdout(Stdio::null())
        .status()
        .expect("the example runs");
    assert!(status.success());

    let tmux = Tmux::start(100, 30);
    tmux.run(&format!(
        "{} replay {}",
        taskscope().display(),
        recording.display()
    ));
    tmux.wait_for("the replay", |s| s.contains("replay 00:"));
    // Pause at the start and go back to it: nothing has stalled yet there.
    tmux.keys(&["Space"]);
    tmux.keys(&["S-Left"]);
    tmux.wait_for("the start of the recording", |s| {
        s.contains("‖ replay 00:00.0") && tab_count(s, "Stalls") == Some(0)
    });
    tmux.keys(&["]"]);
    let screen = tmux.wait_for("the stall after `]`", |s| {
        tab_count(s, "Stalls") == Some(1) && !s.contains("‖ replay 00:00.0")
    });
    assert!(
        screen.contains("‖ replay"),
        "paused at the stall:\n{screen}"
    );
    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
}

#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn the_demo_shows_every_kind_of_problem_and_stops_its_workload() {
    let tmux = Tmux::start(120, 36);
    tmux.run(&format!("{} demo", taskscope().display()));
    // The rows are drawn after the tabs' counts: the lost waker's row is waited for too,
    // not read from a frame caught half drawn.
    let screen = tmux.wait_for("the demo's stall and leaks, the lost waker listed", |s| {
        s.contains("● live")
            && tab_count(s, "Stalls").is_some_and(|n| n >= 1)
            && tab_count(s, "Leaks").is_some_and(|n| n >= 2)
            && s.contains("forgetful")
    });
    let pid: u32 = screen
        .split("pid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in the header:\n{screen}"));
    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
    let gone = PathBuf::from(format!("/proc/{pid}"));
    let start = Instant::now();
    while gone.exists() && start.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !gone.exists(),
        "the demo's workload (pid {pid}) outlived the dashboard"
    );
}

/// A peer that accepts the connection and never answers: the dashboard says so, names the
/// address, keeps retrying, and quits on `q` as usual.
#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn a_silent_peer_is_shown_as_not_answering_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    let _silent = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let tmux = Tmux::start(120, 30);
    tmux.run(&format!(
        "{} attach --connect-timeout 1s unix:{}",
        taskscope().display(),
        socket.display()
    ));
    let screen = tmux.wait_for("the reason on screen", |s| s.contains("no answer from"));
    assert!(screen.contains("silent.sock"), "{screen}");
    tmux.wait_for("a retry", |s| s.contains("retry in"));
    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
}

/// Where `forever`'s four periodic tasks are parked: `sleep(..).await` in their loop.
const FOREVER_SLEEP: &str = "forever.rs:12";

#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn d_takes_a_dump_and_the_waiting_view_groups_the_tasks_by_their_await() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("app.sock");
    let _app = App::start("forever", &socket);
    let tmux = attach(120, 36, &socket);
    tmux.wait_for("the live view", |s| {
        s.contains("● live") && s.contains("forever")
    });
    let mut answer = String::new();
    // A dump is skipped while a worker is stalled (`forever` stalls one for 150 ms every
    // second): ask again, a bounded number of times.
    for _ in 0..5 {
        tmux.keys(&["d"]);
        answer = tmux.wait_for("the dump's answer in the status line", |s| {
            s.contains("dump taken:")
                || s.contains("the dump was skipped")
                || s.contains("await chains are not available in this process")
        });
        if !answer.contains("the dump was skipped") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    if answer.contains("await chains are not available in this process") {
        // A probe without task dumps on this platform or build: it says so, and there
        // are no chains to check.
        eprintln!("the probe takes no dumps here; the chains were not checked");
        tmux.keys(&["q"]);
        assert_terminal_restored(&tmux);
        return;
    }
    assert!(answer.contains("dump taken:"), "{answer}");
    tmux.keys(&["5"]);
    let waiting = tmux.wait_for("the Waiting view with forever's sleeps", |s| {
        s.contains("Waiting at") && s.contains(FOREVER_SLEEP)
    });
    let row = waiting
        .lines()
        .position(|l| l.contains(FOREVER_SLEEP))
        .expect("the row of the sleeps");
    let first_row = waiting
        .lines()
        .position(|l| l.contains("Waiting at"))
        .expect("the header")
        + 1;
    for _ in first_row..row {
        tmux.keys(&["Down"]);
    }
    // Usually all four sleepers; a task the dump found in a worker's LIFO slot (its timer
    // had just fired) is not in it, so the row says how many it holds.
    let count: usize = waiting
        .lines()
        .nth(row)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .expect("the row starts with its count");
    assert!((1..=4).contains(&count), "{waiting}");
    tmux.keys(&["Enter"]);
    tmux.wait_for("the tasks parked there", |s| {
        s.contains("waiting at")
            && s.contains(FOREVER_SLEEP)
            && s.contains(&format!("({count} rows)"))
    });
    tmux.keys(&["Enter"]);
    let details = tmux.wait_for("a task's await chain", |s| {
        s.contains("Waiting   at") && s.contains("runtime frames (f shows them)")
    });
    assert!(details.contains(FOREVER_SLEEP), "{details}");
    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
}

#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn the_resources_view_shows_a_lock_order_inversion_as_two_deadlocked_mutexes() {
    let mutexes = |s: &str| -> Vec<(u64, u64)> {
        (deadlocked_rows(s).into_iter())
            .filter(|row| row.0 == "Mutex")
            .map(|row| (row.1, row.2))
            .collect()
    };
    // Two transfers take two mutexes in opposite orders and wait for each other for good;
    // the program returns after 4 s, and the deadlock stays on screen as it stood.
    let (tmux, screen, _app) = resources_of(
        "deadlock_lock_order",
        "both mutexes marked as a deadlock",
        |s| mutexes(s).len() == 2,
    );
    let rows = mutexes(&screen);
    let [(first_holder, first_waiter), (second_holder, second_waiter)] = rows[..] else {
        panic!("{screen}")
    };
    // Each holds one lock and waits on the other's.
    assert_ne!(first_holder, second_holder, "{screen}");
    assert_eq!(
        (first_waiter, second_waiter),
        (second_holder, first_holder),
        "{screen}"
    );
    for line in (screen.lines()).filter(|l| l.starts_with("DEADLOCK") && l.contains(" Mutex ")) {
        assert!(line.contains("lock_order.rs:"), "created where? {line}");
    }
    assert!(screen.contains("in a deadlock"), "{screen}");
    // Enter opens the holder of the first row, flagged as in a deadlock (while the program
    // lives, its details also say what it waits on; the program may have ended by now).
    tmux.keys(&["Enter"]);
    let details = tmux.wait_for("the holder's details", |s| {
        s.contains(&format!("Task {first_holder} ")) && s.contains("DEADLOCK")
    });
    assert!(details.contains("deadlock_lock_order.rs:"), "{details}");
    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
}

/// The kind, holder (after `task `) and first waiter (after `1: `) of each row of the
/// Resources view marked `DEADLOCK`.
fn deadlocked_rows(screen: &str) -> Vec<(String, u64, u64)> {
    screen
        .lines()
        .filter(|line| line.starts_with("DEADLOCK"))
        .filter_map(|line| {
            let kind = line.split_whitespace().nth(1)?.to_owned();
            let number = |after: &str| -> Option<u64> {
                let at = line.find(after)? + after.len();
                line[at..].split_whitespace().next()?.parse().ok()
            };
            Some((kind, number(" task ")?, number(" 1: ")?))
        })
        .collect()
}

/// Starts the dashboard on the Resources view, then `example`, and returns the screen once
/// `done` holds, with the app (and its socket's directory), which live as long as the caller
/// keeps them.
fn resources_of(
    example: &str,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> (Tmux, String, (App, tempfile::TempDir)) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("app.sock");
    let tmux = attach(120, 30, &socket);
    tmux.wait_for("the dashboard waiting for the app", |s| {
        s.contains("waiting for")
    });
    tmux.keys(&["6"]);
    let app = App::start(example, &socket);
    let screen = tmux.wait_for(what, done);
    (tmux, screen, (app, dir))
}

#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn the_resources_view_shows_two_tasks_joined_on_each_other_as_a_deadlock() {
    let (tmux, screen, _app) =
        resources_of("deadlock_join", "both joins marked as a deadlock", |s| {
            deadlocked_rows(s)
                .iter()
                .filter(|row| row.0 == "join")
                .count()
                == 2
        });
    let rows = deadlocked_rows(&screen);
    let [
        (_, first_joined, first_waiter),
        (_, second_joined, second_waiter),
    ] = rows[..]
    else {
        panic!("{screen}")
    };
    // Each waits for the other's end: the joined task of one row is the waiter of the other.
    assert_ne!(first_joined, second_joined, "{screen}");
    assert_eq!(
        (first_waiter, second_waiter),
        (second_joined, first_joined),
        "{screen}"
    );
    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
}

#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn the_resources_view_shows_a_semaphores_last_permit_held_by_the_task_that_joins_its_waiter() {
    let (tmux, screen, _app) = resources_of(
        "deadlock_semaphore",
        "the semaphore and the join marked as a deadlock",
        |s| {
            let rows = deadlocked_rows(s);
            rows.iter().any(|row| row.0 == "Semaphore") && rows.iter().any(|row| row.0 == "join")
        },
    );
    let rows = deadlocked_rows(&screen);
    let semaphore = rows.iter().find(|row| row.0 == "Semaphore").unwrap();
    let join = rows.iter().find(|row| row.0 == "join").unwrap();
    // The permit's holder joins the task that waits for the permit.
    assert_eq!((semaphore.1, semaphore.2), (join.2, join.1), "{screen}");
    let line = screen.lines().find(|l| l.contains(" Semaphore ")).unwrap();
    assert!(
        line.contains("deadlock_semaphore.rs:"),
        "created where? {line}"
    );
    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
}

#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn a_task_waiting_on_its_own_channel_is_a_leak_not_a_deadlock() {
    // tokio's `mpsc` has no holder to name, so no cycle can be drawn: the task is listed as
    // left alive when the program ends, at its spawn site, and the Resources view shows no
    // deadlock.
    let (tmux, _, _app) = resources_of("waits_on_itself", "the program connected", |s| {
        s.contains("waits_on_itself")
    });
    tmux.keys(&["3"]);
    let leaks = tmux.wait_for("the task left alive at its spawn site", |s| {
        s.lines()
            .any(|l| l.contains("live tasks from this site") && l.contains("waits_on_itself.rs:"))
    });
    tmux.keys(&["6"]);
    let resources = tmux.wait_for("the Resources view again", |s| {
        s.contains("Kind") || s.contains("no task holds or waits")
    });
    assert!(
        deadlocked_rows(&resources).is_empty(),
        "{resources}\n{leaks}"
    );
    assert!(!resources.contains("in a deadlock"), "{resources}");
    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
}

/// The Timeline view's thread rows: (label, cells), read from the screen.
fn timeline_rows(screen: &str) -> Vec<(String, String)> {
    const LABEL: usize = 25;
    screen
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            let label: String = l.chars().take(LABEL).collect();
            let cells: String = l.chars().skip(LABEL).collect();
            (label.trim_end().to_owned(), cells.trim_end().to_owned())
        })
        .filter(|(_, cells)| {
            !cells.is_empty()
                && cells
                    .chars()
                    .all(|c| matches!(c, ' ' | '░' | '▒' | '▓' | '█' | '!'))
        })
        .collect()
}

/// A worker's row with the stall glyph, and another worker's row with polls and no stall:
/// what the Timeline shows of a stall beside a worker that kept polling.
fn stalled_and_busy_workers(screen: &str) -> bool {
    let rows = timeline_rows(screen);
    let workers = || rows.iter().filter(|(label, _)| label.contains("worker"));
    let Some((stalled, _)) = workers().find(|(_, cells)| cells.contains('!')) else {
        return false;
    };
    workers().any(|(label, cells)| label != stalled && cells.contains(['░', '▒', '▓', '█']))
}

#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn the_timeline_shows_the_stalled_worker_beside_one_that_kept_polling() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("app.sock");
    // `forever` stalls a worker 150 ms every second while four tasks tick.
    let _app = App::start("forever", &socket);
    let tmux = attach(120, 36, &socket);
    tmux.wait_for("the live view", |s| s.contains("● live"));
    tmux.keys(&["7"]);
    let screen = tmux.wait_for(
        "a stalled worker beside a polling one",
        stalled_and_busy_workers,
    );
    assert!(
        screen.contains("every thread over the last 10 s"),
        "{screen}"
    );
    assert!(!screen.contains("cannot see"), "{screen}");
    // The cursor, moved back, names what each thread ran in its column.
    tmux.keys(&["-"]);
    tmux.wait_for("the wider span", |s| s.contains("over the last 20 s"));
    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
}

/// Tens of thousands of short tasks a second (`churn_at_exit`), recorded and replayed: the
/// table shows their spawn site as one row with its count, `/site` keeps only such rows,
/// and Enter on one says what its tasks were.
#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn short_lived_tasks_counted_by_site_are_a_row_of_their_site_in_replay() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("churn_at_exit.tsrec");
    let status = Command::new(example("churn_at_exit"))
        .env("TASKSCOPE_BIND", "off")
        .env("TASKSCOPE_RECORD", &recording)
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .env_remove("TASKSCOPE_FOLD")
        .stdout(Stdio::null())
        .status()
        .expect("the example runs");
    assert!(status.success());

    let tmux = Tmux::start(150, 36);
    tmux.run(&format!(
        "{} replay {}",
        taskscope().display(),
        recording.display()
    ));
    tmux.wait_for("the replay", |s| s.contains("replay 00:"));
    tmux.keys(&["/", "s", "i", "t", "e", "Enter"]);
    let site_row = |s: &str| {
        s.lines().any(|line| {
            line.starts_with("site") && line.contains(" tasks") && line.contains("churn_at_exit.rs")
        })
    };
    // The header's count comes with the next refresh of the data (a few a second), and the
    // filter applies once typed.
    tmux.wait_for(
        "the churning site's row, filtered, and the header's count",
        |s| {
            site_row(s)
                && s.contains("short-lived counted by site")
                && s.contains("filter \"site\"")
        },
    );
    tmux.keys(&["Enter"]);
    tmux.wait_for("the site's details", |s| {
        s.contains("Why they are not listed one by one") && s.contains("TASKSCOPE_FOLD=off")
    });
    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
}

#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn the_timeline_of_a_recording_shows_its_stall_in_replay() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("flight_stall.tsrec");
    // One worker blocked 400 ms while a ticker keeps polling on the other.
    let status = Command::new(example("flight_stall"))
        .env("TASKSCOPE_BIND", "off")
        .env("TASKSCOPE_RECORD", &recording)
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .stdout(Stdio::null())
        .status()
        .expect("the example runs");
    assert!(status.success());

    let tmux = Tmux::start(120, 36);
    tmux.run(&format!(
        "{} replay {}",
        taskscope().display(),
        recording.display()
    ));
    tmux.wait_for("the replay", |s| s.contains("replay 00:"));
    tmux.keys(&["7"]);
    // Played to its end, the recording's activity shows what each worker did.
    tmux.wait_for(
        "the stalled worker beside the ticking one",
        stalled_and_busy_workers,
    );
    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux);
}
