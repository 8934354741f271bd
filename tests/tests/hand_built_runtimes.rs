//! Runtimes an app builds by hand: a synchronous `main` with one thread per listener, each
//! running its accept loop in `block_on` on a current-thread runtime given the probe's
//! hooks (`hand_built_listeners`). Run through `taskscope::block_on`, each body is watched
//! as `#[taskscope::main]` watches the body of `main`, and each runtime's tasks are
//! reachable for dumps. No assertion is about how fast anything happens.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use taskscope_api::v1;
use taskscope_e2e::check::{assert_single_error, check_example};
use taskscope_e2e::{PATIENCE, Served, location_of_line, marked_line};

const SOURCE: &str = "src/bin/hand_built_listeners.rs";

/// The TLS listener's body sleeps 400 ms in `block_on` before it accepts: one stall, at
/// its `taskscope::block_on` call, on its thread, with the sleep's line in its stack; the
/// other listeners' bodies, parked in `accept`, are no finding.
#[test]
fn a_blocking_call_in_a_hand_built_runtimes_body_is_a_stall_at_its_block_on_call() {
    let call = location_of_line(SOURCE, "// FAULT: stall", "taskscope");
    let checked = check_example("hand_built_listeners", &[]);
    let finding = assert_single_error(&checked, "stall", &call);
    assert_eq!(finding["task"]["name"], "listener-tls", "{finding:#}");
    assert_eq!(finding["thread"], "listener-tls", "{finding:#}");
    let duration = finding["duration_ms"].as_f64().unwrap();
    assert!(duration >= 300.0, "the 400 ms sleep: {finding:#}");
    let blocks = format!(
        "crates/taskscope-examples/{SOURCE}:{}:",
        marked_line(SOURCE, "BLOCKS")
    );
    let frames = finding["backtrace"]
        .as_array()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| panic!("no backtrace: {finding:#}"));
    assert!(
        frames.iter().any(|f| {
            f["function"]
                .as_str()
                .unwrap()
                .ends_with("load_certificate")
                && f["location"].as_str().unwrap().contains(&blocks)
        }),
        "a frame of load_certificate at {blocks}: {finding:#}"
    );
    let message = finding["message"].as_str().unwrap();
    assert!(message.contains("blocked in"), "{message}");
}

/// The session-expiry tasks of the three hand-built runtimes, each parked on its ticker,
/// are in a dump asked for while the listeners accept.
#[tokio::test]
async fn a_dump_reaches_the_tasks_of_every_hand_built_runtime() {
    let mut app = Served::start("hand_built_listeners", |command| {
        command.stdin(Stdio::piped());
    });
    // The listeners stop when a line arrives here.
    let mut release = app.running.stdin();
    let mut client = app.connect().await;
    let awaited = format!(
        "{SOURCE}:{}:",
        marked_line(SOURCE, "AWAIT: expire_sessions")
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let parked = loop {
        let dump = client
            .dump(v1::DumpRequest {})
            .await
            .expect("a dump is answered")
            .into_inner();
        let parked = tasks_parked_at(&dump, &awaited);
        if parked == 3 {
            break parked;
        }
        assert!(
            Instant::now() < deadline,
            "no dump with the three expiry tasks within 60 s; the last: {dump:?}"
        );
        // One dump a second: a request inside it gets the last one again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    };
    assert_eq!(parked, 3);
    // The app is unharmed: it stops its listeners when told and exits cleanly.
    release.write_all(b"quit\n").unwrap();
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = app.running.exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running {PATIENCE:?} after quit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");
}

/// How many of `dump`'s tasks are parked at `awaited` (`file:line:`).
fn tasks_parked_at(dump: &v1::Dump, awaited: &str) -> usize {
    dump.chains
        .iter()
        .filter(|chain| {
            chain.leaves.iter().any(|&leaf| {
                let leaf = &dump.leaves[leaf as usize];
                leaf.await_frame > 0
                    && dump.frames[leaf.frames[leaf.await_frame as usize - 1] as usize]
                        .location
                        .contains(awaited)
            })
        })
        .count()
}
