//! Await chains on the dashboard: the task details, the Waiting view, taking a dump with
//! `d`, and replay following its position.

use std::time::Instant;

use crossterm::event::KeyCode;
use insta::assert_snapshot;
use taskscope_api::v1;

use super::press;
use crate::model::fixture::{MS, at, ended, spawned, start};
use crate::source::grpc::DumpError;
use crate::tui::app::{App, Screen};
use crate::tui::keys::Outcome;
use crate::tui::live::LinkEvent;
use crate::tui::replay::Player;
use crate::tui::tests::fixture::{self, SECOND, app, app_with_dump, draw, settle, with_dump};
use crate::tui::viewmodel::waits::WaitKey;

fn details(app: &mut App, id: u64) -> String {
    app.screen = Screen::Task(id);
    draw(app, 100, 40)
}

#[test]
fn task_details_show_the_await_chain_user_frames_first() {
    let mut app = app_with_dump();
    assert_snapshot!(details(&mut app, 2));
}

#[test]
fn f_unfolds_the_runtime_frames_of_an_await_chain() {
    let mut app = app_with_dump();
    app.screen = Screen::Task(2);
    let folded = draw(&mut app, 100, 40);
    assert!(
        folded.contains("… 4 runtime frames (f shows them)"),
        "{folded}"
    );
    assert!(!folded.contains("Harness<T,S>::poll"), "{folded}");
    press(&mut app, KeyCode::Char('f'));
    let all = draw(&mut app, 100, 40);
    assert!(all.contains("Harness<T,S>::poll"), "{all}");
    assert!(all.contains("(f folds the 4 runtime frames)"), "{all}");
    let innermost = all
        .find("chan::Rx<T,S>::recv")
        .expect("the leaf's innermost frame");
    let user = all
        .find("→ orders::server::Conn::serve")
        .expect("the .await");
    assert!(innermost < user, "innermost first: {all}");
}

/// A thousand sessions parked at one `.await`, three connections at another, two tasks
/// the dump did not reach, and an ended task whose chain no longer counts.
fn thousand_parked() -> App {
    let mut first = start(77, "/srv/bin/orders");
    let mut spawns = at(SECOND);
    spawns.spawned = (1..=1000)
        .map(|id| spawned(id, "src/session.rs:15:9"))
        .chain((2001..=2003).map(|id| spawned(id, "src/server.rs:41:9")))
        .chain([
            spawned(3001, "src/main.rs:20:5"),
            spawned(3002, "src/main.rs:21:5"),
        ])
        .chain([spawned(4001, "src/jobs.rs:30:9")])
        .collect();
    first.now_ns = 0;
    let sleepers: Vec<u64> = (1..=1000).chain([4001]).collect();
    let mut end = at(3 * SECOND);
    end.ended = vec![ended(4001, v1::Outcome::Completed, None)];
    let mut app = App::live("http://127.0.0.1:6670", Instant::now());
    app.on_link(LinkEvent::Connected);
    for update in [
        first,
        spawns,
        with_dump(fixture::dump(2 * SECOND, &[2001, 2002, 2003], &sleepers)),
        end,
    ] {
        app.apply(&update);
    }
    settle(app)
}

#[test]
fn waiting_view_groups_a_thousand_tasks_parked_at_one_line() {
    let mut app = thousand_parked();
    press(&mut app, KeyCode::Char('5'));
    assert_eq!(app.screen, Screen::Waiting);
    assert_snapshot!(draw(&mut app, 100, 24));
    let counts: Vec<usize> = app.derived.waits.iter().map(|g| g.tasks).collect();
    assert_eq!(counts, [1000, 3, 2]);
    // Grouping is done for the Waiting view only.
    press(&mut app, KeyCode::Char('1'));
    app.refresh();
    assert!(app.derived.waits.is_empty());
}

/// The ids of the tasks the table lists, in order of id.
fn listed_tasks(app: &App) -> Vec<u64> {
    let mut ids: Vec<u64> = (app.derived.rows.iter())
        .filter_map(|r| r.item.task())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn enter_on_a_waiting_row_lists_its_tasks_and_esc_clears_that() {
    let mut app = thousand_parked();
    press(&mut app, KeyCode::Char('5'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Tasks);
    assert!(matches!(app.query.awaiting, Some(WaitKey::At { .. })));
    assert_eq!(listed_tasks(&app), [2001, 2002, 2003]);
    let screen = draw(&mut app, 100, 24);
    assert!(
        screen.contains("waiting at src/server.rs:57:30 in Conn::serve (3 rows)"),
        "{screen}"
    );
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.query.awaiting, None);
    assert_eq!(
        app.derived.rows.len(),
        1006,
        "every task, the ended one too"
    );
    press(&mut app, KeyCode::Char('5'));
    press(&mut app, KeyCode::End);
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        listed_tasks(&app),
        [3001, 3002],
        "the live tasks without a chain"
    );
}

#[test]
fn details_say_why_a_task_has_no_chain() {
    // No dump yet: the key to take one.
    let mut live = app();
    assert!(details(&mut live, 2).contains("Waiting   no dump taken yet: press d to take one"));
    // Spawned after the latest dump.
    let mut later = app();
    later.apply(&with_dump(fixture::dump(SECOND / 2, &[2], &[])));
    let later = &mut settle(later);
    let text = details(later, 111);
    assert!(
        text.contains("spawned after the latest dump (9.50s ago): press d to take one"),
        "{text}"
    );
    // Reached by the dump's size limit.
    let mut limited = app();
    let mut dump = fixture::dump(9 * SECOND, &[2], &[]);
    dump.chains_left_out = 40;
    limited.apply(&with_dump(dump));
    let text = details(&mut settle(limited), 3);
    assert!(
        text.contains("not in the latest dump, which left 40 tasks out at its size limit"),
        "{text}"
    );
    // Reached by the dump, parked on nothing tokio's trace marks (an empty chain), told
    // apart from a task the dump did not reach.
    let mut no_leaf = app();
    let mut dump = fixture::dump(9 * SECOND, &[2], &[]);
    dump.chains.push(v1::AwaitChain {
        task_id: 3,
        leaves: vec![],
    });
    no_leaf.apply(&with_dump(dump));
    let no_leaf = &mut settle(no_leaf);
    let text = details(no_leaf, 3);
    assert!(
        text.contains("Waiting   the dump reached it, parked on no future tokio's trace"),
        "{text}"
    );
    assert!(!text.contains("not in the latest dump"), "{text}");
    let text = details(no_leaf, 100);
    assert!(text.contains("not in the latest dump"), "{text}");
    // A chain of tokio's frames only (a release build's): why the `.await` is missing.
    let mut no_user = app();
    let mut dump = fixture::dump(9 * SECOND, &[2], &[]);
    dump.leaves[0].await_frame = 0;
    for frame in &mut dump.frames {
        frame.user = false;
    }
    no_user.apply(&with_dump(dump));
    let text = details(&mut settle(no_user), 2);
    assert!(
        text.contains("Waiting   in tokio's code only; no `.await` of yours is in the chain"),
        "{text}"
    );
    // A skipped dump.
    let mut skipped = app();
    skipped.apply(&with_dump(v1::Dump {
        taken_ns: 9 * SECOND,
        skipped: "worker 2 is stalled in task 4".into(),
        ..Default::default()
    }));
    let text = details(&mut settle(skipped), 3);
    assert!(
        text.contains("the latest dump was skipped: worker 2 is stalled in task 4"),
        "{text}"
    );
}

#[test]
fn details_say_when_this_process_cannot_dump() {
    let mut app = app();
    let mut update = at(10 * SECOND);
    let mut process = fixture_process();
    process.dumps_unavailable = "tokio's task dumps need Linux on x86_64 or aarch64".into();
    update.process = Some(process);
    app.apply(&update);
    let mut app = settle(app);
    assert_snapshot!(details(&mut app, 2));
    assert_eq!(press(&mut app, KeyCode::Char('d')), Outcome::Continue);
    assert_eq!(
        app.notice.as_deref(),
        Some(
            "await chains are not available in this process: tokio's task dumps need Linux \
             on x86_64 or aarch64"
        )
    );
}

fn fixture_process() -> v1::ProcessInfo {
    crate::model::fixture::process(4242, "/srv/bin/orders")
}

#[test]
fn d_asks_for_a_dump_shows_progress_and_folds_the_answer_in() {
    let mut app = app();
    assert_eq!(press(&mut app, KeyCode::Char('d')), Outcome::TakeDump);
    app.dump_requested(true);
    assert!(draw(&mut app, 100, 24).contains("taking a dump…"));
    assert_eq!(press(&mut app, KeyCode::Char('d')), Outcome::Continue);
    assert_eq!(app.notice.as_deref(), Some("a dump is being taken already"));
    let answer = fixture::dump(9 * SECOND, &[2, 3], &[100]);
    app.on_link(LinkEvent::Dumped(Ok(Box::new(answer.clone()))));
    assert!(!app.taking_dump);
    assert_eq!(
        app.notice.as_deref(),
        Some("dump taken: 3 tasks, the runtime held for 2.0ms; see the Waiting view (5)")
    );
    press(&mut app, KeyCode::Char('5'));
    let groups = app.derived.waits.clone();
    assert_eq!(groups[0].tasks, 2);
    // The probe publishes the same dump on the watch stream: folding it in again is
    // harmless.
    app.apply(&with_dump(answer));
    app.refresh();
    assert_eq!(app.derived.waits, groups);
    // An answer older than a dump already seen does not put older chains back.
    app.apply(&with_dump(fixture::dump(9_500 * MS, &[], &[2, 3])));
    app.on_link(LinkEvent::Dumped(Ok(Box::new(fixture::dump(
        9 * SECOND,
        &[2, 3],
        &[],
    )))));
    let chain = app.model.waiting().of(2).expect("task 2's chain");
    assert_eq!(chain.taken_ns, 9_500 * MS);
}

#[test]
fn a_failed_dump_says_what_went_wrong() {
    let mut app = app();
    press(&mut app, KeyCode::Char('d'));
    app.dump_requested(true);
    app.on_link(LinkEvent::Dumped(Err(DumpError::Unsupported)));
    assert!(!app.taking_dump);
    let screen = draw(&mut app, 120, 24);
    assert!(
        screen.contains(
            "this target cannot take dumps: it runs an older taskscope probe or console-subscriber"
        ),
        "{screen}"
    );
    app.dump_requested(false);
    assert_eq!(
        app.notice.as_deref(),
        Some("cannot ask for a dump now: not connected to a probe")
    );
}

/// The fixture service recorded, with a dump at 5 s placing task 2.
fn replay_with_dump() -> App {
    let mut updates = fixture::updates();
    updates.push(with_dump(fixture::dump(5 * SECOND, &[2], &[])));
    let mut app = settle(App::replay(
        Player::new(updates),
        "orders-4242.tsrec",
        Instant::now(),
    ));
    app.screen = Screen::Task(2);
    app
}

#[test]
fn replay_shows_a_recorded_dump_from_its_time_on() {
    let mut app = replay_with_dump();
    press(&mut app, KeyCode::Right);
    app.refresh();
    let text = details(&mut app, 2);
    assert!(
        text.contains("no dump was recorded up to this point"),
        "{text}"
    );
    assert_eq!(press(&mut app, KeyCode::Char('d')), Outcome::Continue);
    assert!(
        app.notice
            .as_deref()
            .is_some_and(|n| n.starts_with("dumps cannot be taken from a recording")),
        "{:?}",
        app.notice
    );
    for _ in 0..5 {
        press(&mut app, KeyCode::Right);
    }
    app.refresh();
    let text = details(&mut app, 2);
    assert!(
        text.contains("Waiting   at src/server.rs:57:30 in Conn::serve"),
        "{text}"
    );
    assert!(
        text.contains("as of 1.00s ago (00:05.0), requested"),
        "{text}"
    );
    press(&mut app, KeyCode::Left);
    press(&mut app, KeyCode::Left);
    app.refresh();
    let text = details(&mut app, 2);
    assert!(
        text.contains("no dump was recorded up to this point"),
        "{text}"
    );
}

#[test]
fn the_waiting_tab_is_the_fifth_and_tab_cycles_through_it() {
    let mut app = thousand_parked();
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.screen, Screen::Timeline);
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.screen, Screen::Resources);
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.screen, Screen::Waiting);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.screen, Screen::Resources);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.screen, Screen::Timeline);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.screen, Screen::Tasks);
    press(&mut app, KeyCode::Char('5'));
    draw(&mut app, 100, 24);
    // A click on the second group's row selects it; a second click lists its tasks.
    let click = |app: &mut App| {
        app.on_mouse(crossterm::event::MouseEvent {
            kind: crossterm::event::MouseEventKind::Down(crossterm::event::MouseButton::Left),
            column: 10,
            row: 7,
            modifiers: crossterm::event::KeyModifiers::NONE,
        });
        app.refresh_rows();
    };
    click(&mut app);
    assert_eq!(app.waits.index, 1);
    click(&mut app);
    assert_eq!(app.screen, Screen::Tasks);
    assert_eq!(app.derived.rows.len(), 3);
}

#[test]
fn a_join_handle_await_names_candidates_not_an_answer_and_leaves_are_numbered() {
    let mut dump = fixture::dump(9 * SECOND, &[], &[]);
    let join = dump.frames.len() as u32;
    dump.frames.push(v1::Frame {
        function:
            "<tokio::runtime::task::join::JoinHandle<T> as core::future::future::Future>::poll"
                .into(),
        user: true,
        ..Default::default()
    });
    dump.frames.push(v1::Frame {
        function: "orders::main::{{closure}}".into(),
        location: "src/main.rs:31:22".into(),
        user: true,
        ..Default::default()
    });
    dump.leaves.push(v1::AwaitLeaf {
        frames: vec![join, join + 1],
        await_frame: 2,
    });
    // Task 1 awaits a JoinHandle; task 3 waits on both a recv and a sleep (a select!).
    dump.chains = vec![
        v1::AwaitChain {
            task_id: 1,
            leaves: vec![2],
        },
        v1::AwaitChain {
            task_id: 3,
            leaves: vec![0, 1],
        },
    ];
    let mut app = app();
    app.apply(&with_dump(dump));
    let mut app = settle(app);
    let text = details(&mut app, 1);
    assert!(
        text.contains(
            "at src/main.rs:31:22 in orders::main, on tokio::runtime::task::join::JoinHandle"
        ),
        "{text}"
    );
    assert!(
        text.contains("awaits another task's JoinHandle: which one, a backtrace cannot say")
            && text.contains("live tasks it spawned: 2, 3, 4, 5, 100, 101, 102, 103, and 8 more"),
        "{text}"
    );
    let text = details(&mut app, 3);
    assert!(
        text.contains("leaf 1 of 2:") && text.contains("leaf 2 of 2:"),
        "{text}"
    );
    assert!(text.contains("→ orders::session::Session::idle"), "{text}");
}
