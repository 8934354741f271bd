//! How the dashboard copes with big services: the model's ingest rate, and the time to
//! rebuild the task table and to draw a frame, at 1k, 10k and 100k tasks; then the same
//! services with every live task placed by a dump (the Waiting view's grouping).
//!
//! A benchmark to read, not a test that fails on timings; it is ignored by default. Run it
//! in release mode (the numbers in `docs/dashboard.md` come from this):
//!
//! ```text
//! cargo test --release -p taskscope-cli --bin taskscope dashboard_bench -- --ignored --nocapture
//! ```
//!
//! It lives in the crate because `taskscope-cli` is a binary: an example or a `benches/`
//! target could not reach the dashboard's modules.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use taskscope_api::v1;

use crate::model::Model;
use crate::tui::app::App;
use crate::tui::live::LinkEvent;

/// Spawn sites the synthetic service uses.
const SITES: u64 = 50;
/// Tasks per update, as a busy probe batches them.
const BATCH: usize = 1_000;

/// The update stream of a service that spawned `n` tasks, then reports stats for all of
/// them, ends a tenth, and has one stall going on.
fn stream(n: u64) -> Vec<v1::Update> {
    let ms = 1_000_000u64;
    let mut updates = vec![v1::Update {
        now_ns: 0,
        process: Some(v1::ProcessInfo {
            pid: 1,
            program: "bench".into(),
            instrumentation: v1::Instrumentation::Seen as i32,
            stall_threshold_ns: 100 * ms,
            waker_tracking: true,
            ..Default::default()
        }),
        snapshot: v1::SnapshotMark::SnapshotOnly as i32,
        ..Default::default()
    }];
    let ids: Vec<u64> = (1..=n).collect();
    for (chunk_index, chunk) in ids.chunks(BATCH).enumerate() {
        let now_ns = (chunk_index as u64 + 1) * 10 * ms;
        let spawned = chunk
            .iter()
            .map(|&id| v1::TaskSpawned {
                id,
                name: if id.is_multiple_of(3) {
                    format!("worker-{id}")
                } else {
                    String::new()
                },
                kind: v1::TaskKind::Task as i32,
                location: Some(v1::Location {
                    file: format!("src/service/module_{}.rs", id % SITES),
                    line: (id % 200) as u32,
                    column: 9,
                }),
                parent_id: if id > 100 { id % 100 + 1 } else { 0 },
                spawned_ns: now_ns,
                ..Default::default()
            })
            .collect();
        updates.push(v1::Update {
            now_ns,
            spawned,
            ..Default::default()
        });
    }
    let mut histogram = vec![0u32; taskscope_api::histogram::BUCKETS];
    histogram[12] = 40;
    histogram[20] = 2;
    for chunk in ids.chunks(BATCH) {
        let now_ns = updates.last().map_or(0, |u| u.now_ns) + 10 * ms;
        let stats = chunk
            .iter()
            .map(|&id| v1::TaskStats {
                id,
                state: if id.is_multiple_of(97) {
                    v1::TaskState::Running as i32
                } else {
                    v1::TaskState::Idle as i32
                },
                polls: 42 + id % 1000,
                busy_ns: id * 1_000,
                scheduled_ns: id * 100,
                wakes: 42,
                wakers: 1,
                last_poll_start_ns: now_ns - 5 * ms,
                last_poll_end_ns: now_ns - 4 * ms,
                poll_histogram: histogram.clone(),
                max_poll_ns: 3 * ms,
                ..Default::default()
            })
            .collect();
        let ended = chunk
            .iter()
            .filter(|&&id| id.is_multiple_of(10))
            .map(|&id| v1::TaskEnded {
                id,
                ended_ns: now_ns,
                outcome: v1::Outcome::Completed as i32,
                ..Default::default()
            })
            .collect();
        updates.push(v1::Update {
            now_ns,
            stats,
            ended,
            ..Default::default()
        });
    }
    let now_ns = updates.last().map_or(0, |u| u.now_ns) + 10 * ms;
    updates.push(v1::Update {
        now_ns,
        stalls: vec![v1::Stall {
            stall_id: 1,
            phase: v1::StallPhase::Ongoing as i32,
            task_id: 97,
            thread: 2,
            poll_started_ns: now_ns.saturating_sub(300 * ms),
            duration_ns: 300 * ms,
            ..Default::default()
        }],
        ..Default::default()
    });
    updates
}

/// A dump placing every live task of [`stream`]`(n)` on one of [`SITES`] leaves, as a
/// service parked at a few dozen `.await`s.
fn dump(n: u64, taken_ns: u64) -> v1::Dump {
    let frames = (0..SITES)
        .flat_map(|site| {
            [
                v1::Frame {
                    function: "<tokio::time::sleep::Sleep as core::future::future::Future>::poll"
                        .into(),
                    user: true,
                    ..Default::default()
                },
                v1::Frame {
                    function: format!("bench::service::module_{site}::run::{{{{closure}}}}"),
                    location: format!("src/service/module_{site}.rs:42:18"),
                    user: true,
                    ..Default::default()
                },
            ]
        })
        .collect();
    v1::Dump {
        taken_ns,
        trigger: v1::DumpTrigger::Requested as i32,
        frames,
        leaves: (0..SITES as u32)
            .map(|site| v1::AwaitLeaf {
                frames: vec![site * 2, site * 2 + 1],
                await_frame: 2,
            })
            .collect(),
        chains: (1..=n)
            .filter(|id| !id.is_multiple_of(10))
            .map(|task_id| v1::AwaitChain {
                task_id,
                leaves: vec![(task_id % SITES) as u32],
            })
            .collect(),
        ..Default::default()
    }
}

fn per_iteration(iterations: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed() / iterations
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[test]
#[ignore = "a benchmark: run it with --release --ignored --nocapture"]
fn dashboard_bench() {
    println!(
        "| tasks | ingest | ingest rate | table rebuild | rebuild, filter + tree | frame 200×50 | frame 80×24 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in [1_000u64, 10_000, 100_000] {
        let updates = stream(n);
        let ingest = per_iteration(5, || {
            let mut model = Model::new();
            for update in &updates {
                model.apply(update);
            }
            black_box(model);
        });
        let mut app = App::live("bench", Instant::now());
        app.on_link(LinkEvent::Connected);
        for update in &updates {
            app.apply(update);
        }
        // Everything a data change costs: the judge's flags, the counts, the sorted rows.
        let rebuild = per_iteration(10, || app.refresh());
        // What a key press in the table costs at worst: filtering and a tree.
        app.query.filter = "module_1".to_owned();
        app.query.tree = true;
        let filtered = per_iteration(10, || app.refresh_rows());
        app.query = Default::default();
        app.refresh();
        let mut frame = |width, height| {
            let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
            app.size = ratatui::layout::Rect::new(0, 0, width, height);
            // The first frame allocates the buffers.
            terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
            per_iteration(200, || {
                terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
            })
        };
        let wide = frame(200, 50);
        let small = frame(80, 24);
        println!(
            "| {n} | {} | {:.2}M tasks/s | {} | {} | {} | {} |",
            millis(ingest),
            n as f64 / ingest.as_secs_f64() / 1e6,
            millis(rebuild),
            millis(filtered),
            millis(wide),
            millis(small),
        );
    }
    println!();
    println!(
        "| tasks | dump fold | grouping by await | rebuild on the Waiting view | Waiting frame 200×50 |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for n in [1_000u64, 10_000, 100_000] {
        let updates = stream(n);
        let mut app = App::live("bench", Instant::now());
        app.on_link(LinkEvent::Connected);
        for update in &updates {
            app.apply(update);
        }
        let taken_ns = app.model.now_ns();
        let update = v1::Update {
            now_ns: taken_ns,
            dumps: vec![dump(n, taken_ns)],
            ..Default::default()
        };
        let fold = per_iteration(5, || app.model.apply(&update));
        let grouping = per_iteration(10, || {
            black_box(crate::tui::viewmodel::waits::groups(&app.model));
        });
        // On the Waiting view, the only one that groups.
        app.screen = crate::tui::app::Screen::Waiting;
        let rebuild = per_iteration(10, || app.refresh());
        let mut terminal = Terminal::new(TestBackend::new(200, 50)).unwrap();
        terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
        let frame = per_iteration(200, || {
            terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
        });
        println!(
            "| {n} | {} | {} | {} | {} |",
            millis(fold),
            millis(grouping),
            millis(rebuild),
            millis(frame)
        );
    }
}
