//! `timers`: many tasks sleeping 1 ms, 20 times each: the timer wheel and the wakes it
//! drives, with little CPU per poll.

use std::time::Duration;

const SLEEPS: u32 = 20;

pub(super) async fn run(tasks: u64) -> anyhow::Result<()> {
    let mut handles = Vec::with_capacity(tasks as usize);
    for i in 0..tasks {
        handles.push(tokio::spawn(super::counted::counted(async {
            for _ in 0..SLEEPS {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })));
        super::pace(i).await;
    }
    super::join_all(handles).await?;
    Ok(())
}
