//! End-to-end over real gRPC: a watcher sees a stall while the poll is still running.

use std::time::{Duration, Instant};

use taskscope_api::v1::{self, StallPhase};
use taskscope_e2e::{Folded, Served, fault_location};

#[tokio::test]
async fn a_watcher_sees_a_stall_start_before_the_poll_returns_then_its_end() {
    let app = Served::start("blocking_sleep", |command| {
        command.stdout(std::process::Stdio::null());
    });
    let mut client = app.connect().await;
    let mut stream = client
        .watch(v1::WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut folded = Folded::default();
    let mut started: Option<v1::Stall> = None;
    let mut ended: Option<v1::Stall> = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while ended.is_none() && Instant::now() < deadline {
        let Ok(Some(update)) = stream.message().await else {
            break;
        };
        for stall in &update.stalls {
            match StallPhase::try_from(stall.phase).unwrap() {
                StallPhase::Started if started.is_none() => started = Some(stall.clone()),
                StallPhase::Ended => ended = Some(stall.clone()),
                _ => {}
            }
        }
        folded.apply(update);
    }
    let started = started.expect("a STARTED stall was streamed");
    let ended = ended.expect("an ENDED stall was streamed");
    assert_eq!(started.stall_id, ended.stall_id);
    assert!(
        started.duration_ns < 600_000_000,
        "the stall was reported while the 600 ms poll was still running ({} ns in)",
        started.duration_ns
    );
    assert!(started.duration_ns >= 100_000_000, "{started:?}");
    assert!(ended.duration_ns >= 600_000_000, "{ended:?}");
    let task = &folded.tasks[&ended.task_id];
    assert_eq!(
        task.location(),
        fault_location("src/bin/blocking_sleep.rs", "stall")
    );
    let thread = &folded.threads[&ended.thread];
    assert!(thread.name.starts_with("tokio-r"), "{thread:?}");
}

#[tokio::test]
async fn snapshot_pages_describe_the_process() {
    let app = Served::start("forever", |_| {});
    let mut client = app.connect().await;
    let page = client
        .snapshot(v1::SnapshotRequest { page_token: 0 })
        .await
        .unwrap()
        .into_inner();
    let pid = app.running.pid();
    drop(app);
    let update = page.update.unwrap();
    let process = update.process.unwrap();
    assert_eq!(process.pid, pid);
    assert_eq!(process.program, "forever");
    assert_eq!(process.instrumentation, v1::Instrumentation::Seen as i32);
    assert_eq!(page.next_page_token, 0);
}
