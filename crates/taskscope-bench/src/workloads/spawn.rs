//! `spawn`: many tiny tasks, spawned and joined. Measures what instrumentation adds to a
//! task's birth, single poll and death.

pub(super) async fn run(tasks: u64) -> anyhow::Result<()> {
    let mut handles = Vec::with_capacity(tasks as usize);
    for i in 0..tasks {
        handles.push(tokio::spawn(super::counted::counted(async move {
            std::hint::black_box(i)
        })));
        super::pace(i).await;
    }
    super::join_all(handles).await?;
    Ok(())
}
