//! The Resources view: every lock, semaphore and joined task with its holders and waiters,
//! deadlocks first; Enter opens the holder; and, on a route that cannot see holders, why
//! and what would.

use crossterm::event::KeyCode;
use insta::assert_snapshot;
use taskscope_api::v1;

use crate::model::fixture::at;
use crate::tui::app::{App, Screen};
use crate::tui::tests::fixture::{SECOND, app, draw, settle};
use crate::tui::tests::press;
use crate::tui::viewmodel::resources::{InCycle, Key};

const MS: u64 = 1_000_000;

fn location(file: &str, line: u32) -> Option<v1::Location> {
    Some(v1::Location {
        file: file.into(),
        line,
        column: 26,
    })
}

fn resource(
    id: u64,
    kind: &str,
    at: u32,
    holders: &[(u64, u64, u32)],
    exact: bool,
) -> v1::Resource {
    v1::Resource {
        id,
        kind: kind.into(),
        location: location("src/bank.rs", at),
        holders: holders
            .iter()
            .map(|&(task_id, since_ns, count)| v1::Holder {
                task_id,
                since_ns,
                count,
            })
            .collect(),
        capacity: 1,
        exact,
    }
}

fn wait(task_id: u64, resource_id: u64, joins_task: u64, since_ns: u64) -> v1::TaskWait {
    v1::TaskWait {
        task_id,
        resource_id,
        joins_task,
        since_ns,
    }
}

/// At 10 s: tasks 2 and 3 in a lock-order inversion for 2.5 s (each holds one `Mutex` and
/// waits on the other's); task 1 waits 300 ms on a `Semaphore` whose permits tasks 5 and
/// 100 hold; task 4 has held an `RwLock` 4 s, with no waiter; task 101 joins task 102.
fn graph() -> v1::WaitGraph {
    v1::WaitGraph {
        resources: vec![
            resource(1, "Mutex", 24, &[(2, 7_400 * MS, 1)], true),
            resource(2, "Mutex", 25, &[(3, 7_450 * MS, 1)], true),
            resource(
                3,
                "Semaphore",
                30,
                &[(5, 9_000 * MS, 1), (100, 8_000 * MS, 2)],
                true,
            ),
            resource(4, "RwLock", 31, &[(4, 6 * SECOND, 1)], true),
        ],
        waits: vec![
            wait(2, 2, 0, 7_500 * MS),
            wait(3, 1, 0, 7_500 * MS),
            wait(1, 3, 0, 9_700 * MS),
            wait(101, 0, 102, 9_900 * MS),
        ],
        left_out: 0,
    }
}

fn with_graph(graph: v1::WaitGraph) -> App {
    let mut app = app();
    let mut update = at(10 * SECOND);
    update.wait_graph = Some(graph);
    app.apply(&update);
    settle(app)
}

fn resources(app: &mut App, width: u16, height: u16) -> String {
    press(app, KeyCode::Char('6'));
    assert_eq!(app.screen, Screen::Resources);
    draw(app, width, height)
}

#[test]
fn resources_view_lists_holders_and_waiters_deadlock_first() {
    let mut app = with_graph(graph());
    let screen = resources(&mut app, 120, 16);
    assert_snapshot!(screen);
    let keys: Vec<Key> = app.derived.resources.iter().map(|r| r.key).collect();
    assert_eq!(
        keys,
        [
            // The inversion's two locks (2.5 s), then the semaphore with a waiter, then
            // the join with its waiter (held: no time), then the lock nobody waits on.
            Key::Resource(1),
            Key::Resource(2),
            Key::Resource(3),
            Key::Join(102),
            Key::Resource(4),
        ]
    );
    assert!(matches!(
        app.derived.resources[0].cycle,
        InCycle::Deadlock { .. }
    ));
    for line in screen.lines().filter(|l| l.contains("src/bank.rs:2")) {
        assert!(line.contains("DEADLOCK"), "{line}");
    }
    let mutex = screen
        .lines()
        .find(|l| l.contains("src/bank.rs:24:26"))
        .expect("the first mutex");
    assert!(mutex.contains("task 2 conn 10.0.0.7"), "{mutex}");
    assert!(mutex.contains("1: 3"), "{mutex}");
}

#[test]
fn enter_on_a_resource_opens_its_holders_details_and_esc_comes_back() {
    let mut app = with_graph(graph());
    resources(&mut app, 120, 16);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Task(3));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.screen, Screen::Resources);
}

#[test]
fn a_cycle_shorter_than_the_threshold_is_marked_forming_not_deadlock() {
    let mut graph = graph();
    for wait in &mut graph.waits {
        if wait.resource_id == 1 || wait.resource_id == 2 {
            wait.since_ns = 9_800 * MS;
        }
    }
    let mut app = with_graph(graph);
    let screen = resources(&mut app, 120, 16);
    assert!(matches!(
        app.derived.resources[0].cycle,
        InCycle::Forming { .. }
    ));
    assert!(!screen.contains("DEADLOCK"), "{screen}");
    assert!(
        screen.contains("a cycle of waits has stood 200.0ms (a deadlock at 1.00s)"),
        "{screen}"
    );
    let mutex = screen
        .lines()
        .find(|l| l.contains("src/bank.rs:24:26"))
        .unwrap();
    assert!(mutex.starts_with("\"forming "), "{mutex}");
}

/// The runtime's shutdown cancels the tasks of a deadlock and their guards go with them:
/// the graph empties, and the deadlock stays listed as it stood.
#[test]
fn a_deadlock_cancelled_at_shutdown_stays_listed_as_it_stood() {
    let mut app = with_graph(graph());
    let mut update = at(11 * SECOND);
    for id in [2, 3] {
        let mut end = crate::model::fixture::ended(id, v1::Outcome::CancelledAtShutdown, None);
        end.ended_ns = 10_500 * MS;
        update.ended.push(end);
    }
    update.wait_graph = Some(v1::WaitGraph::default());
    app.apply(&update);
    let mut app = settle(app);
    let screen = resources(&mut app, 120, 16);
    let keys: Vec<Key> = app.derived.resources.iter().map(|r| r.key).collect();
    assert_eq!(keys, [Key::Resource(1), Key::Resource(2)], "{screen}");
    assert!(screen.contains("DEADLOCK"), "{screen}");
}

#[test]
fn resources_view_says_why_holders_are_not_seen_and_how_to_see_them() {
    let mut app = app();
    let mut update = at(10 * SECOND);
    let mut process = crate::model::fixture::process(4242, "/srv/bin/orders");
    process.holders_unavailable = "holders of locks and permits are seen on the tracing \
                                   route only (tokio's resource spans): start the probe \
                                   with `taskscope::init()`"
        .into();
    update.process = Some(process);
    app.apply(&update);
    let mut app = settle(app);
    let screen = resources(&mut app, 100, 12);
    assert_snapshot!(screen);
    assert!(
        screen.contains("Holders not seen: holders of locks and permits are seen on the tracing"),
        "{screen}"
    );
    assert!(screen.contains("no task awaits another through taskscope::join"));
}

#[test]
fn resources_view_with_nothing_held_says_so() {
    let mut app = app();
    let screen = resources(&mut app, 100, 12);
    assert!(
        screen.contains("no task holds or waits on a lock, a permit or a join now"),
        "{screen}"
    );
}

#[test]
fn in_a_replay_the_resources_view_follows_the_position() {
    let mut updates = crate::tui::tests::fixture::updates();
    let mut update = at(10 * SECOND);
    update.wait_graph = Some(graph());
    updates.push(update);
    let mut app = settle(App::replay(
        crate::tui::replay::Player::new(updates),
        "orders-4242.tsrec",
        std::time::Instant::now(),
    ));
    let start = resources(&mut app, 120, 16);
    assert!(app.derived.resources.is_empty(), "{start}");
    app.perform(crate::tui::keys::Action::Seek(20));
    app.refresh();
    let end = draw(&mut app, 120, 16);
    assert_eq!(
        end.lines()
            .filter(|l| l.starts_with("\"DEADLOCK Mutex"))
            .count(),
        2,
        "{end}"
    );
    app.perform(crate::tui::keys::Action::Seek(-5));
    app.refresh();
    assert!(app.derived.resources.is_empty());
}
