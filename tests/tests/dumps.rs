//! Await-chain dumps over real gRPC: where a parked task waits, and a dump asked for while
//! a worker is stalled, which must come back at once saying why it was skipped, and leave
//! the app as it was.

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

async fn dump(client: &mut Client) -> (v1::Dump, Duration) {
    let asked = Instant::now();
    let dump = client.dump(v1::DumpRequest {}).await.unwrap().into_inner();
    (dump, asked.elapsed())
}

#[tokio::test]
async fn a_dump_names_the_await_and_a_stalled_worker_makes_it_skip_at_once() {
    let app = Served::start("stalled_dump", |_| {});
    let mut client = app.connect().await;
    let mut stream = client
        .watch(v1::WatchRequest {})
        .await
        .unwrap()
        .into_inner();

    stall_phase(&mut stream, StallPhase::Started).await;
    let (during, took) = dump(&mut client).await;
    assert!(
        during.skipped.contains("is stalled in task"),
        "a dump during a stall is skipped, saying why: {during:?}"
    );
    assert!(during.chains.is_empty(), "{during:?}");
    // Well under the stall's 2 s: the probe did not wait for the stalled worker.
    assert!(took < Duration::from_millis(1500), "took {took:?}");

    stall_phase(&mut stream, StallPhase::Ended).await;
    // Past the one-dump-a-second limit: a fresh dump, not the skipped one again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (after, _) = dump(&mut client).await;
    assert!(after.skipped.is_empty(), "{after:?}");
    assert!(
        reaches(&after, "src/bin/stalled_dump.rs"),
        "the parked task's .await is in the dump: {after:?}"
    );
    // The app is unharmed: it still answers, and nothing is stalled any more.
    let (again, _) = dump(&mut client).await;
    assert_eq!(
        again.taken_ns, after.taken_ns,
        "inside a second: the same dump"
    );
}
