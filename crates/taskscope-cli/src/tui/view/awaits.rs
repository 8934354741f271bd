//! A task's await chain in its details: where it waits (the `.await` in the user's code,
//! and the call it awaits), how old that is, each leaf's frames with the runtime's folded
//! (`f` unfolds them) — or, when there is no chain, why not.

use ratatui::text::{Line, Span};

use super::details::frame_line;
use crate::duration::human_ns;
use crate::model::names::{is_join_handle, short_call, short_function};
use crate::model::stall::shown_frames;
use crate::model::task::{Kind, Task};
use crate::model::waiting::{Chain, DumpFacts, Leaf, Trigger};
use crate::tui::app::{App, Source};
use crate::tui::theme::Theme;
use crate::tui::viewmodel::metrics::clock;

/// Leaves listed before "and N more" (a `select!` over many futures).
const LEAVES_SHOWN: usize = 8;

/// The lines of task `task`'s await chain, or of why it has none.
pub(super) fn lines(app: &App, task: &Task, out: &mut Vec<Line<'static>>) {
    let theme = app.theme;
    let model = app.shown();
    let title = if task.is_live() { "Waiting" } else { "Waited" };
    let Some(chain) = model.waiting().of(task.id) else {
        if task.is_live() {
            out.push(Line::from(vec![
                super::details::label(title, theme),
                Span::styled(why_no_chain(app, task), theme.dim()),
            ]));
            out.push(Line::raw(""));
        }
        return;
    };
    if chain.leaves.is_empty() {
        out.push(Line::from(vec![
            super::details::label(title, theme),
            Span::styled(
                format!(
                    "the dump reached it, {}",
                    crate::model::waiting::NO_TOKIO_LEAF
                ),
                theme.dim(),
            ),
        ]));
        out.push(Line::styled(
            format!("          {}", age(app, chain.taken_ns, chain.trigger)),
            theme.dim(),
        ));
        out.push(Line::raw(""));
        return;
    }
    let at = match chain.await_point() {
        Some((leaf, frame)) => {
            let on = leaf
                .awaited_call()
                .map(|call| format!(", on {}", short_call(&call.function)))
                .unwrap_or_default();
            format!(
                "at {} in {}{on}",
                frame.location.as_deref().unwrap_or("?"),
                short_function(&frame.function)
            )
        }
        None => format!(
            "in tokio's code only; {}",
            crate::model::waiting::NO_USER_AWAIT
        ),
    };
    out.push(Line::from(vec![
        super::details::label(title, theme),
        Span::styled(at, theme.title()),
    ]));
    out.push(Line::styled(
        format!("          {}", age(app, chain.taken_ns, chain.trigger)),
        theme.dim(),
    ));
    join_handle_line(app, task.id, chain, out);
    for (index, leaf) in chain.leaves.iter().take(LEAVES_SHOWN).enumerate() {
        if chain.leaves.len() > 1 {
            out.push(Line::styled(
                format!("  leaf {} of {}:", index + 1, chain.leaves.len()),
                theme.dim(),
            ));
        }
        leaf_lines(leaf, app.all_frames, theme, out);
    }
    if chain.leaves.len() > LEAVES_SHOWN {
        out.push(Line::styled(
            format!("  … and {} more leaves", chain.leaves.len() - LEAVES_SHOWN),
            theme.dim(),
        ));
    }
    out.push(Line::raw(""));
}

/// "as of 3.2s ago (00:07.0), at shutdown".
pub(super) fn age(app: &App, taken_ns: u64, trigger: Trigger) -> String {
    let trigger = trigger.as_str();
    let trigger = if trigger.is_empty() {
        String::new()
    } else {
        format!(", {trigger}")
    };
    format!(
        "as of {} ago ({}){trigger}",
        human_ns(app.now_ns().saturating_sub(taken_ns)),
        clock(taken_ns)
    )
}

/// A task awaiting a `JoinHandle` waits for another task; the backtrace cannot say which,
/// so this says only what is known: the tasks it spawned that are still alive.
fn join_handle_line(app: &App, task_id: u64, chain: &Chain, out: &mut Vec<Line<'static>>) {
    let awaits_a_task = chain
        .await_point()
        .and_then(|(leaf, _)| leaf.awaited_call())
        .is_some_and(|call| is_join_handle(&call.function));
    if !awaits_a_task {
        return;
    }
    let mut children: Vec<u64> = app
        .shown()
        .tasks()
        .filter(|t| t.parent_id == task_id && t.id != task_id && t.is_live())
        .map(|t| t.id)
        .collect();
    children.sort_unstable();
    let spawned = match children.as_slice() {
        [] => "none of the tasks it spawned is alive".to_owned(),
        ids => {
            let mut listed: Vec<String> = ids.iter().take(8).map(u64::to_string).collect();
            if ids.len() > listed.len() {
                listed.push(format!("and {} more", ids.len() - listed.len()));
            }
            format!("live tasks it spawned: {}", listed.join(", "))
        }
    };
    for text in [
        "awaits another task's JoinHandle: which one, a backtrace cannot say",
        &spawned,
    ] {
        out.push(Line::styled(format!("          {text}"), app.theme.dim()));
    }
}

/// One leaf: the frames worth showing (the call awaited, then the user's frames, the
/// `.await` marked `→`), the others folded into a line; all of them with `f`.
fn leaf_lines(leaf: &Leaf, all: bool, theme: Theme, out: &mut Vec<Line<'static>>) {
    let shown = shown_frames(&leaf.frames);
    let await_frame = leaf.await_point();
    let folded = leaf.frames.len() - shown.len();
    let frames: Vec<_> = if all {
        leaf.frames.iter().collect()
    } else {
        shown.iter().collect()
    };
    for frame in frames {
        let mut line = frame_line(frame, theme);
        if Some(frame) == await_frame
            && let Some(first) = line.spans.first_mut()
        {
            first.content = format!("  → {}", frame.function).into();
        }
        out.push(if shown.contains(frame) {
            line
        } else {
            line.style(theme.dim())
        });
    }
    if folded > 0 {
        let what = if all {
            format!("    (f folds the {folded} runtime frames)")
        } else {
            format!("    … {folded} runtime frames (f shows them)")
        };
        out.push(Line::styled(what, theme.dim()));
    }
}

/// Why a live task has no await chain, and what to do about it.
pub(super) fn why_no_chain(app: &App, task: &Task) -> String {
    if let Some(why) = why_no_dump(app) {
        return why;
    }
    let Some(latest) = app.shown().waiting().latest() else {
        return String::new();
    };
    if let Some(skipped) = &latest.skipped {
        return format!("the latest dump was skipped: {skipped}");
    }
    match task.kind {
        Kind::Blocking => return "a spawn_blocking closure has no .await to show".to_owned(),
        Kind::Local => return "a LocalSet's tasks are never in a dump".to_owned(),
        Kind::BlockOn => {
            return "a runtime's block_on future is not one of its tasks, \
                                 so it is not in a dump"
                .to_owned();
        }
        Kind::Task | Kind::Unknown => {}
    }
    if task.spawned_ns > latest.taken_ns {
        return format!(
            "spawned after the latest dump ({} ago){}",
            human_ns(app.now_ns().saturating_sub(latest.taken_ns)),
            press_d(app)
        );
    }
    not_in_the_dump(latest)
}

fn not_in_the_dump(latest: &DumpFacts) -> String {
    match latest.left_out {
        0 => "not in the latest dump (dumps do not reach LocalSet tasks or tasks of another \
              runtime)"
            .to_owned(),
        n => format!("not in the latest dump, which left {n} tasks out at its size limit"),
    }
}

/// Why there is no dump to read chains from at all, if so: await chains are not available
/// from this target, or no dump has been taken yet.
pub(super) fn why_no_dump(app: &App) -> Option<String> {
    let model = app.shown();
    if model.is_console_target() {
        return Some("await chains are not available from a console-subscriber target".into());
    }
    let unavailable = model.process().map_or("", |p| p.dumps_unavailable.as_str());
    if !unavailable.is_empty() {
        return Some(format!("await chains are not available: {unavailable}"));
    }
    if model.waiting().latest().is_some() {
        return None;
    }
    Some(match app.source {
        Source::Replay(_) => "no dump was recorded up to this point".to_owned(),
        Source::Live(_) => format!("no dump taken yet{}", press_d(app)),
    })
}

fn press_d(app: &App) -> &'static str {
    match app.source {
        Source::Replay(_) => "",
        Source::Live(_) => ": press d to take one",
    }
}
