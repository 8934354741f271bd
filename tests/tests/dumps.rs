//! Await-chain dumps over real gRPC: where a parked task waits, and a dump asked for while
//! a worker is stalled, which must come back while the stall lasts, saying why it was
//! skipped, and leave the app as it was. No assertion here is about how fast anything
//! happens: the test ends the stall itself, after the answer.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use taskscope_api::v1::{self, StallPhase};
use taskscope_e2e::{Client, Served};

/// Whether `dump` places a task at `file` (the example's own source).
fn reaches(dump: &v1::Dump, file: &str) -> bool {
    dump.leaves.iter().any(|leaf| {
        leaf.await_frame > 0
            && dump.frames[leaf.frames[leaf.await_frame as usize - 1] as usize]
                .location
                .contains(file)
    })
}

async fn stall_phase(stream: &mut tonic::Streaming<v1::Update>, phase: StallPhase) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let update = stream.message().await.unwrap().expect("the stream goes on");
        if update.stalls.iter().any(|s| s.phase == phase as i32) {
            return;
        }
    }
    panic!("no stall {phase:?} within 30 s");
}

/// A dump, asked for with a deadline far beyond any pause the probe allows itself.
async fn dump(client: &mut Client) -> v1::Dump {
    let asked = client.dump(v1::DumpRequest {});
    tokio::time::timeout(Duration::from_secs(30), asked)
        .await
        .expect("a dump is answered within 30 s")
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_dump_names_the_await_and_a_stalled_worker_makes_it_skip_at_once() {
    let mut app = Served::start("stalled_dump", |command| {
        command.stdin(Stdio::piped());
    });
    // The example's stall lasts until a line arrives here.
    let mut release = app.running.stdin();
    let mut client = app.connect().await;
    let mut stream = client
        .watch(v1::WatchRequest {})
        .await
        .unwrap()
        .into_inner();

    stall_phase(&mut stream, StallPhase::Started).await;
    // Answered while the stall still holds its worker (it ends only when released
    // below): the probe did not wait for the stalled worker.
    let during = dump(&mut client).await;
    assert!(
        during.skipped.contains("is stalled in task"),
        "a dump during a stall is skipped, saying why: {during:?}"
    );
    assert!(during.chains.is_empty(), "{during:?}");
    release.write_all(b"go\n").unwrap();
    stall_phase(&mut stream, StallPhase::Ended).await;

    // Past the one-dump-a-second limit, a fresh dump, not the skipped one again. Asked
    // for twice at once, both answers are that one dump: the limit holds the second
    // request that arrives inside the second, whatever the machine's speed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let (mut first, mut second) = (client.clone(), client.clone());
        let (first, second) = tokio::join!(dump(&mut first), dump(&mut second));
        match (first != during, second != during) {
            (true, true) => {
                assert_eq!(first, second, "two dumps taken inside a second");
                break first;
            }
            _ => {
                assert!(Instant::now() < deadline, "no fresh dump within 30 s");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    // The app is unharmed: it answers, and nothing is stalled any more.
    assert!(after.skipped.is_empty(), "{after:?}");
    assert!(
        reaches(&after, "src/bin/stalled_dump.rs"),
        "the parked task's .await is in the dump: {after:?}"
    );
}
