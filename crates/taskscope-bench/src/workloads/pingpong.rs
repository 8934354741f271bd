//! `pingpong`: pairs of tasks bouncing a number over bounded channels. Every message is a
//! wake and a poll doing almost nothing else, so this is the worst case for per-poll cost.

use tokio::sync::mpsc;

use super::counted::counted;

/// Task pairs (the rest of the size is spread over them).
const PAIRS: u64 = 1_000;

pub(super) async fn run(messages: u64) -> anyhow::Result<()> {
    let pairs = PAIRS.min(messages / 2).max(1);
    let round_trips = messages / (2 * pairs);
    let mut handles = Vec::with_capacity(2 * pairs as usize);
    for _ in 0..pairs {
        let (to_pong, mut pong_inbox) = mpsc::channel::<u64>(1);
        let (to_ping, mut ping_inbox) = mpsc::channel::<u64>(1);
        handles.push(tokio::spawn(counted(async move {
            while let Some(n) = pong_inbox.recv().await {
                if to_ping.send(n + 1).await.is_err() {
                    break;
                }
            }
        })));
        handles.push(tokio::spawn(counted(async move {
            for n in 0..round_trips {
                if to_pong.send(n).await.is_err() {
                    break;
                }
                std::hint::black_box(ping_inbox.recv().await);
            }
        })));
    }
    super::join_all(handles).await?;
    Ok(())
}
