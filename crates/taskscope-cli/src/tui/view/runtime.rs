//! The runtime: per thread, what it is polling now and for how long; the blocking pool.
//! Built without `--cfg tokio_unstable`, where no poll is seen: per worker, whether it is
//! busy or parked and for how long, its stall now with the line, and tokio's count of the
//! tasks alive.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;

use super::table::{self, Cell, Col};
use crate::duration::human_ns;
use crate::model::runtime::{Runtime, Thread, Worker};
use crate::model::stall::{Phase, blocking_line, shown_frames};
use crate::model::task::Kind;
use crate::tui::app::App;

/// The threads table sits below two lines about the blocking pool.
pub(super) fn threads_area(body: Rect) -> Rect {
    if body.height <= 3 {
        return body;
    }
    Rect::new(body.x, body.y + 2, body.width, body.height - 2)
}

pub(super) fn render(app: &App, body: Rect, buf: &mut Buffer) {
    if app.shown().sees_workers_only() {
        return render_workers(app, body, buf);
    }
    let theme = app.theme;
    if body.height > 3 {
        buf.set_line(
            body.x,
            body.y,
            &Line::styled(pool_line(app.shown().runtime()), theme.title()),
            body.width,
        );
    }
    let area = threads_area(body);
    let cols = [
        Col::right("#", 4),
        Col::left("Thread", 20),
        Col::right("OS tid", 8),
        Col::right("Polling", 12),
        Col::right("For", 10),
        Col::left("Spawned at", location_width(area)),
    ];
    let threads: Vec<_> = app.shown().runtime().threads().collect();
    table::render(
        area,
        buf,
        theme,
        &cols,
        None,
        threads.len(),
        &app.runtime,
        |index| {
            let (number, thread) = threads[index];
            thread_row(app, number, thread, location_width(area))
        },
    );
    if threads.is_empty() {
        table::empty(area, buf, "no thread has polled a task yet", theme.dim());
    }
}

/// The line about the blocking pool, or why there is none.
fn pool_line(runtime: &Runtime) -> String {
    let queued = runtime
        .blocking_alive
        .saturating_sub(runtime.blocking_running);
    if runtime.threads_unavailable {
        "threads and blocking pool: not available from a console-subscriber target".to_owned()
    } else if runtime.blocking_unobserved {
        "blocking pool: not observed on the probe's hooks route (TASKSCOPE_ROUTE=tracing shows it)"
            .to_owned()
    } else {
        format!(
            "blocking pool (spawn_blocking): {} busy, {} queued",
            runtime.blocking_running, queued
        )
    }
}

/// One thread's row: exited threads dimmed, a worker polling one task past the stall
/// threshold marked.
fn thread_row(app: &App, number: u32, thread: &Thread, location_width: u16) -> Vec<Cell> {
    let theme = app.theme;
    let model = app.shown();
    let dim = if thread.exited {
        theme.dim()
    } else {
        Style::new()
    };
    let name = if thread.exited {
        format!("{} (exited)", thread.name)
    } else {
        thread.name.to_string()
    };
    let (task, since, location) = if thread.polling_task == 0 {
        ("idle".to_owned(), (String::new(), dim), String::new())
    } else {
        let ns = app.now_ns().saturating_sub(thread.poll_started_ns);
        let task = model.task(thread.polling_task);
        // A thread of the blocking pool runs its closure for as long as it takes:
        // only a worker polling a task that long is stalled.
        let blocking = task.is_some_and(|t| t.kind == Kind::Blocking);
        let style = if ns >= app.policy.stall_threshold_ns && !blocking {
            theme.bad()
        } else {
            dim
        };
        let location = task
            .map(|t| model.location(t.location).to_owned())
            .unwrap_or_default();
        let what = if blocking { "blocking" } else { "task" };
        (
            format!("{what} {}", thread.polling_task),
            (human_ns(ns), style),
            table::fit_end(&location, usize::from(location_width)),
        )
    };
    vec![
        (number.to_string(), dim),
        (name, dim),
        (thread.os_tid.to_string(), dim),
        (task, dim),
        since,
        (location, dim),
    ]
}

fn location_width(area: Rect) -> u16 {
    area.width.saturating_sub(5 + 20 + 8 + 12 + 10 + 5).max(10)
}

/// The runtime of a build without `--cfg tokio_unstable`: tokio's counts, what the cfg
/// would add, and a row per thread.
fn render_workers(app: &App, body: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let runtime = app.shown().runtime();
    if body.height > 3 {
        buf.set_line(
            body.x,
            body.y,
            &Line::styled(counts_line(runtime), theme.title()),
            body.width,
        );
        let adds = "--cfg tokio_unstable adds each task: its spawn location, polls and outcome";
        buf.set_line(
            body.x,
            body.y + 1,
            &Line::styled(adds, theme.dim()),
            body.width,
        );
    }
    let area = threads_area(body);
    let cols = [
        Col::right("#", 4),
        Col::left("Thread", 20),
        Col::left("State", 8),
        Col::right("For", 9),
        Col::right("Busy", 9),
        Col::right("Parks", 7),
        Col::left("Stalled at", workers_location_width(area)),
    ];
    let threads: Vec<_> = runtime.threads().collect();
    table::render(
        area,
        buf,
        theme,
        &cols,
        None,
        threads.len(),
        &app.runtime,
        |index| {
            let (number, thread) = threads[index];
            worker_row(app, number, thread, workers_location_width(area))
        },
    );
    if threads.is_empty() {
        table::empty(area, buf, "no worker has parked yet", theme.dim());
    }
}

/// tokio's own counts, or why there are none.
fn counts_line(runtime: &Runtime) -> String {
    match runtime.counts {
        Some(counts) => format!(
            "tokio: {} tasks alive on {} workers (num_alive_tasks)",
            counts.alive_tasks, counts.workers
        ),
        None => "tokio's task count: its runtime is not reachable (built by hand, without \
                 taskscope::block_on)"
            .to_owned(),
    }
}

/// One thread's row: a stalled worker with its duration and line, else busy or parked
/// and since when.
fn worker_row(app: &App, number: u32, thread: &Thread, location_width: u16) -> Vec<Cell> {
    let theme = app.theme;
    let model = app.shown();
    let now = app.now_ns();
    let dim = if thread.exited {
        theme.dim()
    } else {
        Style::new()
    };
    let name = if thread.exited {
        format!("{} (exited)", thread.name)
    } else {
        thread.name.to_string()
    };
    let stall = model
        .stalls()
        .find(|s| s.thread == number && s.phase == Phase::Ongoing);
    let (state, since, at) = match (stall, thread.worker) {
        (Some(stall), _) => {
            let shown = shown_frames(&stall.stack);
            let at = blocking_line(&shown).unwrap_or_default();
            (
                ("stalled".to_owned(), theme.bad()),
                (human_ns(stall.duration_at(now)), theme.bad()),
                table::fit_end(at, usize::from(location_width)),
            )
        }
        (
            None,
            Some(Worker {
                parked, since_ns, ..
            }),
        ) => {
            let state = if parked { "parked" } else { "busy" };
            let style = if parked { theme.dim() } else { dim };
            (
                (state.to_owned(), style),
                (human_ns(now.saturating_sub(since_ns)), dim),
                String::new(),
            )
        }
        (None, None) if thread.polling_task != 0 => {
            let ns = now.saturating_sub(thread.poll_started_ns);
            (
                ("polling".to_owned(), dim),
                (human_ns(ns), dim),
                String::new(),
            )
        }
        (None, None) => (
            ("idle".to_owned(), theme.dim()),
            (String::new(), dim),
            String::new(),
        ),
    };
    let metrics = thread.worker.and_then(|w| w.metrics);
    vec![
        (number.to_string(), dim),
        (name, dim),
        state,
        since,
        (
            metrics.map(|m| human_ns(m.busy_ns)).unwrap_or_default(),
            dim,
        ),
        (
            metrics.map(|m| m.parks.to_string()).unwrap_or_default(),
            dim,
        ),
        (at, dim),
    ]
}

fn workers_location_width(area: Rect) -> u16 {
    area.width
        .saturating_sub(4 + 20 + 8 + 9 + 9 + 7 + 6)
        .max(10)
}
