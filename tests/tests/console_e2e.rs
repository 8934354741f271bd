//! tokio-console's protocol end to end, both ways, with real processes and real gRPC:
//!
//! * `taskscope check --attach` and `taskscope attach` (in tmux) read an app instrumented
//!   with plain `console_subscriber::init()` (`console_app`) and find its stall and its
//!   lost waker;
//! * an app running the taskscope probe with `TASKSCOPE_CONSOLE_BIND` (`console_served`)
//!   is read by a console-api client, as tokio-console reads it, and by
//!   `taskscope check --protocol console`.
//!
//! Timing: no assertion on how fast anything happens; every wait has a wide margin.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use console_api::instrument::InstrumentRequest;
use console_api::instrument::instrument_client::InstrumentClient;
use taskscope_e2e::check::{Checked, check_args};
use taskscope_e2e::tmux::{Tmux, tab_count};
use taskscope_e2e::{PATIENCE, Running, command, free_port, location_of_line, taskscope};

/// `file:line:col` of the `tokio::spawn` on (or just above) the line marked `marker`.
fn spawn_location(source: &str, marker: &str) -> String {
    location_of_line(source, marker, "spawn").to_string()
}

/// A free TCP address on the loopback interface.
fn free_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// An example program; killed when dropped.
struct App(Running);

impl App {
    fn start(name: &str, env: &[(&str, String)]) -> Self {
        let mut command = command(name);
        command
            .env("CONSOLE_APP_SECONDS", "120")
            .env_remove("TOKIO_CONSOLE_BIND")
            .env_remove("TASKSCOPE_CONSOLE_BIND")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        Self(Running::spawn(&mut command))
    }

    /// Waits until `address` accepts connections.
    fn wait_for(&mut self, address: SocketAddr) {
        let start = Instant::now();
        while TcpStream::connect(address).is_err() {
            if let Some(status) = self.0.exited() {
                panic!("the example exited ({status}) before listening on {address}");
            }
            assert!(
                start.elapsed() < PATIENCE,
                "nothing listened on {address} within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn check_attach_finds_the_stall_and_the_lost_waker_of_a_console_subscriber_app() {
    let address = free_address();
    let mut app = App::start(
        "console_app",
        &[("TOKIO_CONSOLE_BIND", address.to_string())],
    );
    app.wait_for(address);
    // `auto` (the default) finds console's service after taskscope's is refused. The app
    // blocks a worker for 2.5 s every 4.5 s, so 8 s always hold one.
    let Checked {
        status,
        report,
        output,
    } = check_args(&["--attach", &address.to_string(), "--duration", "8s"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status, 1, "{report:#}\n{stderr}");
    assert_eq!(report["verdict"], "fail");
    // Every task of the app reached the model: a lost waker missing below is then a
    // verdict missed, not a task never seen.
    assert!(
        report["summary"]["tasks"].as_u64().unwrap() >= 5,
        "{report:#}\n{stderr}"
    );
    let findings = report["findings"].as_array().unwrap();
    // stderr carries the notes (events console-subscriber dropped, among them), which the
    // JSON report does not.
    let find = |kind: &str| {
        findings
            .iter()
            .find(|f| f["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} finding: {report:#}\n{stderr}"))
    };
    let stall = find("stall");
    assert_eq!(
        stall["spawn_location"],
        spawn_location("src/bin/console_app.rs", "// FAULT: stall"),
        "{stall:#}"
    );
    assert_eq!(stall["severity"], "error");
    assert!(
        stall["message"]
            .as_str()
            .unwrap()
            .contains("blocked its worker thread"),
        "{stall:#}"
    );
    let lost = find("lost_waker");
    assert_eq!(
        lost["spawn_location"],
        spawn_location("src/bin/console_app.rs", "// FAULT: lost_waker"),
        "{lost:#}"
    );
    assert_eq!(lost["severity"], "error");
    // The healthy tasks are not findings.
    assert_eq!(findings.len(), 2, "{report:#}");
    // What the translation cannot know is said, not hidden.
    assert!(stderr.contains("console-subscriber"), "{stderr}");

    // Asked for taskscope's protocol only, the same target is refused clearly.
    let Checked { status, output, .. } = check_args(&[
        "--attach",
        &address.to_string(),
        "--protocol",
        "taskscope",
        "--duration",
        "1s",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status, 2, "{stderr}");
    assert!(stderr.contains("taskscope probe"), "{stderr}");
}

/// Task spans seen by a console-api client: (location, dropped) by console id, until
/// `enough` holds or the patience runs out.
async fn console_tasks(
    address: SocketAddr,
    enough: impl Fn(&HashMap<u64, (String, bool)>) -> bool,
) -> HashMap<u64, (String, bool)> {
    let mut client = InstrumentClient::connect(format!("http://{address}"))
        .await
        .expect("the console server answers");
    let mut stream = client
        .watch_updates(InstrumentRequest {})
        .await
        .expect("the console server streams")
        .into_inner();
    let mut tasks = HashMap::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !enough(&tasks) {
        let update = tokio::time::timeout_at(deadline, stream.message())
            .await
            .unwrap_or_else(|_| panic!("not enough tasks within {PATIENCE:?}: {tasks:?}"))
            .expect("the stream stays up")
            .expect("the stream does not end");
        let Some(task_update) = update.task_update else {
            continue;
        };
        for task in task_update.new_tasks {
            let location = task
                .location
                .map(|l| {
                    format!(
                        "{}:{}:{}",
                        l.file.unwrap_or_default(),
                        l.line.unwrap_or(0),
                        l.column.unwrap_or(0)
                    )
                })
                .unwrap_or_default();
            tasks.insert(task.id.map_or(0, |id| id.id), (location, false));
        }
        for (id, stats) in task_update.stats_update {
            if stats.dropped_at.is_some()
                && let Some(task) = tasks.get_mut(&id)
            {
                task.1 = true;
            }
        }
    }
    tasks
}

#[test]
fn tokio_console_reads_the_tasks_of_an_app_running_the_probe_with_the_console_option() {
    let probe = free_address();
    let console = free_address();
    let mut app = App::start(
        "console_served",
        &[
            ("TASKSCOPE_BIND", probe.to_string()),
            ("TASKSCOPE_CONSOLE_BIND", console.to_string()),
        ],
    );
    app.wait_for(console);
    let spawned_at = spawn_location("src/bin/console_served.rs", "// SPAWNS: 5");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let at_site = |tasks: &HashMap<u64, (String, bool)>| {
        tasks
            .values()
            .filter(|(location, dropped)| !dropped && location.ends_with(&spawned_at))
            .count()
    };
    let tasks = runtime.block_on(console_tasks(console, |tasks| at_site(tasks) >= 5));
    assert_eq!(at_site(&tasks), 5, "{tasks:#?}");
    // The app's tasks only: the probe's own runtime and the console server are not traced.
    for (location, _) in tasks.values() {
        assert!(
            location.contains("crates/taskscope-examples/"),
            "a task that is not the app's: {location} in {tasks:#?}"
        );
    }

    // And taskscope reads the same console server, as it would any console-subscriber.
    let Checked {
        status,
        report,
        output,
    } = check_args(&[
        "--attach",
        &console.to_string(),
        "--protocol",
        "console",
        "--duration",
        "3s",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status, 0, "{report:#}\n{stderr}");
    assert!(
        report["summary"]["tasks"].as_u64().unwrap() >= 5,
        "{report:#}"
    );
    // The probe itself sees the same tasks, with the console layer next to it.
    let Checked {
        status,
        report,
        output,
    } = check_args(&["--attach", &probe.to_string(), "--duration", "2s"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status, 0, "{report:#}\n{stderr}");
    assert!(
        report["summary"]["tasks"].as_u64().unwrap() >= 5,
        "{report:#}"
    );
    // The probe's own port speaks taskscope's protocol only.
    let Checked { status, output, .. } = check_args(&[
        "--attach",
        &probe.to_string(),
        "--protocol",
        "console",
        "--duration",
        "1s",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status, 2, "{stderr}");
    assert!(
        stderr.contains("does not serve tokio-console's protocol"),
        "{stderr}"
    );
}

#[test]
#[cfg_attr(missing_tmux, ignore = "needs tmux")]
fn the_dashboard_shows_a_console_subscriber_apps_tasks_and_flags_its_stall_and_lost_waker() {
    let tmux = Tmux::start(160, 40);
    let address = free_address();
    let mut app = App::start(
        "console_app",
        &[("TOKIO_CONSOLE_BIND", address.to_string())],
    );
    app.wait_for(address);
    tmux.keys(&[
        "-l",
        &format!(
            "{} attach --protocol console {address}",
            taskscope().display()
        ),
    ]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the app's tasks", |s| {
        tab_count(s, "Tasks").is_some_and(|n| n >= 5) && s.contains("console_app.rs:")
    });
    assert!(
        screen.contains("console-subscriber target"),
        "the header does not say what kind of target this is:\n{screen}"
    );
    // The stalled task's row is flagged (`S` now, `s` once its stall has ended).
    let location = spawn_location("src/bin/console_app.rs", "// FAULT: stall");
    let file_line = location
        .rsplit('/')
        .next()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .0;
    tmux.wait_for("the stall, flagged on its task", |s| {
        tab_count(s, "Stalls").is_some_and(|n| n >= 1)
            && s.lines()
                .any(|l| (l.starts_with('S') || l.starts_with('s')) && l.contains(file_line))
    });
    // The lost-waker task is flagged too (`W`).
    let location = spawn_location("src/bin/console_app.rs", "// FAULT: lost_waker");
    let lost_line = location
        .rsplit('/')
        .next()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .0;
    tmux.wait_for("the lost waker, flagged on its task", |s| {
        s.lines()
            .any(|l| l.get(..6).is_some_and(|flags| flags.contains('W')) && l.contains(lost_line))
    });
    // Its details: the poll histogram (from console's task details), and what a
    // console-subscriber target cannot tell said as such.
    tmux.keys(&["/"]);
    tmux.keys(&["-l", file_line]);
    tmux.keys(&["Enter"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the stalled task's details", |s| {
        s.contains("p50") && s.contains("not available from a console-subscriber target")
    });
    tmux.keys(&["Escape"]);
    tmux.keys(&["Escape"]);
    tmux.keys(&["4"]);
    tmux.wait_for("the runtime view saying what it cannot show", |s| {
        s.contains("threads and blocking pool: not available from a console-subscriber target")
    });
    tmux.keys(&["q"]);
    tmux.wait_for("the prompt after quitting", |s| {
        s.lines().filter(|l| l.starts_with("READY$")).count() >= 2 && !s.contains("Tasks (")
    });
}
