//! Holders in the task details: what a task waits on and who holds it, what it holds, and
//! on a route that cannot see holders, why and what would.

use insta::assert_snapshot;
use taskscope_api::v1;

use crate::model::fixture::at;
use crate::tui::app::{App, Screen};
use crate::tui::tests::fixture::{SECOND, app, draw, settle};

fn details(app: &mut App, id: u64) -> String {
    app.screen = Screen::Task(id);
    draw(app, 100, 40)
}

/// Task 2 waits on a `Mutex` that task 3 has held for 2.3 s.
fn waiting_on_a_lock() -> App {
    let mut app = app();
    let mut update = at(10 * SECOND);
    update.wait_graph = Some(v1::WaitGraph {
        resources: vec![v1::Resource {
            id: 1,
            kind: "Mutex".into(),
            location: Some(v1::Location {
                file: "src/db.rs".into(),
                line: 40,
                column: 13,
            }),
            holders: vec![v1::Holder {
                task_id: 3,
                since_ns: 10 * SECOND - 2_300_000_000,
                count: 1,
            }],
            capacity: 1,
            exact: true,
        }],
        waits: vec![v1::TaskWait {
            task_id: 2,
            resource_id: 1,
            joins_task: 0,
            since_ns: 10 * SECOND - 1_500_000_000,
        }],
        left_out: 0,
    });
    app.apply(&update);
    settle(app)
}

#[test]
fn details_name_the_lock_a_task_waits_on_and_who_has_held_it_how_long() {
    let mut app = waiting_on_a_lock();
    let text = details(&mut app, 2);
    assert_snapshot!(text);
    assert!(
        text.contains(
            "Waits on  `Mutex` at src/db.rs:40:13, held by task 3 (src/server.rs:41:9) for \
             2.30s; waiting 1.50s"
        ),
        "{text}"
    );
    let holder = details(&mut app, 3);
    assert!(
        holder.contains("Holds     `Mutex` at src/db.rs:40:13 for 2.30s, 1 task waiting"),
        "{holder}"
    );
}

#[test]
fn details_say_when_holders_cannot_be_seen_and_how_to_see_them() {
    let mut app = app();
    let mut update = at(10 * SECOND);
    let mut process = crate::model::fixture::process(4242, "/srv/bin/orders");
    process.holders_unavailable = "holders of locks and permits are seen on the tracing \
                                   route only"
        .into();
    update.process = Some(process);
    app.apply(&update);
    let mut app = settle(app);
    let text = details(&mut app, 2);
    assert!(
        text.contains("Holders   holders of locks and permits are seen on the tracing route"),
        "{text}"
    );
}
