//! A dashboard over a small, fixed service for the view and key tests: healthy tasks, a
//! stall going on, one that ended, a lost waker, a panic, a cancelled task, a parent with
//! children and a spawn site that keeps growing.

use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use taskscope_api::v1;

use crate::model::fixture::{MS, at, ended, frame, spawned, stall, start, stats, threads};
use crate::tui::app::{App, Link, Source};
use crate::tui::theme::Theme;

pub(crate) const SECOND: u64 = 1_000 * MS;

/// A frame the probe marked as worth showing.
fn user_frame(function: &str, location: &str) -> v1::Frame {
    v1::Frame {
        user: true,
        ..frame(function, location)
    }
}

/// A histogram of `polls` polls around 50 µs and one of `slow_ns`.
fn histogram(polls: u32, slow_ns: Option<u64>) -> Vec<u32> {
    let mut buckets = vec![0u32; taskscope_api::histogram::BUCKETS];
    buckets[taskscope_api::histogram::bucket_of(50_000)] = polls;
    if let Some(slow) = slow_ns {
        buckets[taskscope_api::histogram::bucket_of(slow)] += 1;
    }
    buckets
}

fn named(id: u64, location: &str, name: &str, parent: u64, spawned_ns: u64) -> v1::TaskSpawned {
    let mut task = spawned(id, location);
    task.name = name.into();
    task.parent_id = parent;
    task.spawned_ns = spawned_ns;
    task
}

fn idle(id: u64, polls: u64, busy_ns: u64, last_end_ns: u64) -> v1::TaskStats {
    let mut s = stats(id, v1::TaskState::Idle, polls, 1);
    s.busy_ns = busy_ns;
    s.scheduled_ns = busy_ns / 4;
    s.wakes = polls;
    s.last_poll_start_ns = last_end_ns.saturating_sub(busy_ns / polls.max(1));
    s.last_poll_end_ns = last_end_ns;
    s.max_poll_ns = 80_000;
    s.poll_histogram = histogram(polls as u32, None);
    s
}

/// The updates of the fixed service, up to probe time 10 s.
pub(crate) fn updates() -> Vec<v1::Update> {
    let mut first = start(4242, "/srv/bin/orders");
    first.runtime = Some(threads(&[
        (1, "main"),
        (2, "tokio-runtime-worker"),
        (3, "tokio-runtime-worker"),
    ]));
    let mut out = vec![first];

    let mut spawn = at(100 * MS);
    spawn.spawned = vec![
        named(1, "src/main.rs:20:5", "server", 0, 0),
        named(2, "src/server.rs:41:9", "conn 10.0.0.7", 1, 50 * MS),
        named(3, "src/server.rs:41:9", "conn 10.0.0.9", 1, 60 * MS),
        named(4, "src/report.rs:12:5", "nightly-report", 1, 70 * MS),
        named(5, "src/cache.rs:88:13", "cache-refresh", 1, 80 * MS),
        named(6, "src/wait.rs:7:5", "forgetful", 0, 90 * MS),
        named(7, "src/jobs.rs:30:9", "parse-job", 0, 95 * MS),
        named(8, "src/jobs.rs:44:9", "slow-job", 0, 96 * MS),
    ];
    out.push(spawn);

    // Sessions opened and never closed: 12 over 9 seconds from one site.
    for i in 0..12u64 {
        let mut update = at(SECOND + i * 750 * MS);
        update.spawned.push(named(
            100 + i,
            "src/session.rs:15:9",
            "session",
            1,
            SECOND + i * 750 * MS,
        ));
        update
            .stats
            .push(idle(100 + i, 1, 20_000, SECOND + i * 750 * MS));
        out.push(update);
    }

    let mut stalled = at(3 * SECOND);
    stalled.stalls.push(v1::Stall {
        poll_started_ns: 2_500 * MS,
        samples: vec![v1::StackSample {
            at_ns: 100 * MS,
            // As the probe marks them: the blocking call and the user's frames, then
            // the runtime's machinery, which views fold.
            frames: vec![
                user_frame(
                    "std::thread::sleep",
                    "/rustc/abc/library/std/src/thread/mod.rs:880",
                ),
                user_frame("orders::cache::refresh_blocking", "src/cache.rs:101"),
                user_frame("orders::cache::refresh::{{closure}}", "src/cache.rs:90"),
                frame(
                    "<core::pin::Pin<P> as core::future::future::Future>::poll",
                    "/rustc/abc/library/core/src/future/future.rs:133",
                ),
                frame(
                    "tokio::runtime::task::core::Core<T,S>::poll::{{closure}}",
                    "/home/ci/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.47.1/src/runtime/task/core.rs:375",
                ),
                frame(
                    "tokio::runtime::scheduler::multi_thread::worker::Context::run_task",
                    "/home/ci/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.47.1/src/runtime/scheduler/multi_thread/worker.rs:596",
                ),
                frame(
                    "std::sys::pal::unix::thread::Thread::new::thread_start",
                    "/rustc/abc/library/std/src/sys/pal/unix/thread.rs:105",
                ),
            ],
            ..Default::default()
        }],
        ..stall(1, 5, v1::StallPhase::Ended, 450 * MS)
    });
    let mut panic = ended(
        7,
        v1::Outcome::Panicked,
        Some(idle(7, 2, 90_000, 2 * SECOND)),
    );
    panic.panic_message = "invalid digit found in string".into();
    panic.panic_location = "src/jobs.rs:33:40".into();
    panic.ended_ns = 2 * SECOND;
    let mut cancelled = ended(8, v1::Outcome::Cancelled, Some(idle(8, 1, 9_000, 200 * MS)));
    cancelled.ended_ns = 1_100 * MS;
    stalled.ended = vec![panic, cancelled];
    out.push(stalled);

    let mut last = at(10 * SECOND);
    last.stats = vec![
        idle(1, 40, 4 * MS, 9_800 * MS),
        idle(2, 310, 31 * MS, 9_900 * MS),
        idle(3, 120, 12 * MS, 9_700 * MS),
        idle(5, 60, 470 * MS, 9_000 * MS),
        {
            let mut lost = idle(6, 1, 30_000, 100 * MS);
            lost.wakers = 0;
            lost
        },
        {
            let mut running = stats(4, v1::TaskState::Running, 3, 1);
            running.busy_ns = 1_200 * MS;
            running.last_poll_start_ns = 9_400 * MS;
            running.running_thread = 2;
            running.poll_histogram = histogram(2, Some(600 * MS));
            running
        },
    ];
    last.stalls.push(v1::Stall {
        poll_started_ns: 9_400 * MS,
        ..stall(2, 4, v1::StallPhase::Ongoing, 600 * MS)
    });
    last.runtime = Some(v1::RuntimeState {
        threads: vec![
            v1::ThreadState {
                thread: 2,
                name: "tokio-runtime-worker".into(),
                polling_task: 4,
                poll_started_ns: 9_400 * MS,
                os_tid: 4250,
                ..Default::default()
            },
            v1::ThreadState {
                thread: 3,
                name: "tokio-runtime-worker".into(),
                os_tid: 4251,
                ..Default::default()
            },
        ],
        blocking_alive: 3,
        blocking_running: 2,
        ..Default::default()
    });
    out.push(last);
    out
}

/// A live dashboard that has seen [`updates`], drawn without colour.
pub(crate) fn app() -> App {
    let mut app = App::live("http://127.0.0.1:6670", Instant::now());
    app.on_link(crate::tui::live::LinkEvent::Connected);
    for update in updates() {
        app.apply(&update);
    }
    settle(app)
}

/// An app with its derived data up to date and a colourless theme.
pub(crate) fn settle(mut app: App) -> App {
    app.theme = Theme::plain();
    app.refresh();
    app
}

/// A live dashboard that never connected.
pub(crate) fn waiting() -> App {
    let mut app = App::live("unix:/tmp/app.sock", Instant::now());
    app.source = Source::Live(Link::Waiting {
        reason: "nothing is listening".into(),
        retry_in: Duration::from_millis(800),
    });
    settle(app)
}

/// What the app draws at `width` × `height`, as text.
pub(crate) fn draw(app: &mut App, width: u16, height: u16) -> String {
    app.size = ratatui::layout::Rect::new(0, 0, width, height);
    let mut terminal = match Terminal::new(TestBackend::new(width, height)) {
        Ok(terminal) => terminal,
        Err(error) => panic!("test terminal: {error}"),
    };
    if let Err(error) = terminal.draw(|frame| frame.render_widget(&*app, frame.area())) {
        panic!("draw: {error}");
    }
    if width == 0 || height == 0 {
        return String::new();
    }
    terminal.backend().to_string()
}

/// A frame of tokio's, from the registry.
fn tokio_frame(function: &str, file: &str) -> v1::Frame {
    frame(
        function,
        &format!(
            "/home/ci/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.47.1/src/{file}"
        ),
    )
}

/// The frames of a task's leaf parked on `recv()` at `src/server.rs:57:30`, as the probe
/// marks them: the runtime's around, the awaited call and the user's frames marked.
fn recv_leaf_frames() -> Vec<v1::Frame> {
    vec![
        tokio_frame(
            "tokio::sync::mpsc::chan::Rx<T,S>::recv::{{closure}}",
            "sync/mpsc/chan.rs:321",
        ),
        v1::Frame {
            user: true,
            ..tokio_frame(
                "tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}",
                "sync/mpsc/bounded.rs:479",
            )
        },
        user_frame(
            "orders::server::Conn::serve::{{closure}}",
            "src/server.rs:57:30",
        ),
        user_frame("orders::server::accept::{{closure}}", "src/server.rs:44:13"),
        tokio_frame(
            "tokio::runtime::task::core::Core<T,S>::poll::{{closure}}",
            "runtime/task/core.rs:375",
        ),
        tokio_frame(
            "tokio::runtime::task::harness::Harness<T,S>::poll",
            "runtime/task/harness.rs:153",
        ),
        tokio_frame(
            "tokio::runtime::dump::trace_current_thread",
            "runtime/dump.rs:288",
        ),
    ]
}

/// A dump taken at `taken_ns` (on request): `recv` tasks parked on `recv()` in
/// `Conn::serve`, `sleep` tasks on a `sleep` in `Session::idle`, one leaf each.
pub(crate) fn dump(taken_ns: u64, recv: &[u64], sleep: &[u64]) -> v1::Dump {
    let mut frames = recv_leaf_frames();
    let sleep_at = frames.len() as u32;
    frames.push(v1::Frame {
        user: true,
        ..tokio_frame(
            "<tokio::time::sleep::Sleep as core::future::future::Future>::poll",
            "time/sleep.rs:448",
        )
    });
    frames.push(user_frame(
        "orders::session::Session::idle::{{closure}}",
        "src/session.rs:88:14",
    ));
    let chain = |leaf: u32| {
        move |&task_id: &u64| v1::AwaitChain {
            task_id,
            leaves: vec![leaf],
        }
    };
    v1::Dump {
        taken_ns,
        trigger: v1::DumpTrigger::Requested as i32,
        pause_ns: 2 * MS,
        leaves: vec![
            v1::AwaitLeaf {
                frames: (0..sleep_at).collect(),
                await_frame: 3,
            },
            v1::AwaitLeaf {
                frames: vec![sleep_at, sleep_at + 1, 4, 5, 6],
                await_frame: 2,
            },
        ],
        chains: recv
            .iter()
            .map(chain(0))
            .chain(sleep.iter().map(chain(1)))
            .collect(),
        frames,
        ..Default::default()
    }
}

/// An update carrying `dump`.
pub(crate) fn with_dump(dump: v1::Dump) -> v1::Update {
    v1::Update {
        now_ns: dump.taken_ns,
        dumps: vec![dump],
        ..Default::default()
    }
}

/// A live dashboard over [`updates`] and a dump at 9 s: tasks 2 and 3 wait in `recv()`,
/// the sessions 100–105 in a `sleep`.
pub(crate) fn app_with_dump() -> App {
    let mut app = app();
    app.apply(&with_dump(dump(
        9 * SECOND,
        &[2, 3],
        &[100, 101, 102, 103, 104, 105],
    )));
    settle(app)
}
