//! `spawn`: many tiny tasks, spawned and joined. Measures what instrumentation adds to a
//! task's birth, single poll and death.

pub(super) async fn run(tasks: u64) -> anyhow::Result<()> {
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            tokio::spawn(super::counted::counted(
                async move { std::hint::black_box(i) },
            ))
        })
        .collect();
    super::join_all(handles).await?;
    Ok(())
}
