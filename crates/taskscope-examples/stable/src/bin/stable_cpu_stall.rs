//! On plain stable tokio: a task computes a hash on its worker for 700 ms of its thread's
//! CPU time without a single `.await`, while a ticker keeps the other worker parking and
//! waking.
//!
//! The work is measured in CPU time, not wall time, so that a loaded machine stretches the
//! poll rather than shortening the work: on any machine the poll runs far past the stall
//! threshold on a CPU, a stall of the app's own however long it also waits for one.

use std::time::Duration;

/// Hashes `seed` round after round until its thread has spent `work` on a CPU (Linux's
/// count of it; elsewhere, wall time): all on one line, so that a stack sampled anywhere
/// in it names that line, even inside the read of the count.
#[rustfmt::skip]
fn spin(mut hash: u64, work: Duration) -> u64 {
    let start = std::time::Instant::now(); let cpu = || std::fs::read_to_string("/proc/thread-self/schedstat").ok().and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok()).unwrap_or_else(|| start.elapsed().as_nanos() as u64); let until = cpu() + work.as_nanos() as u64; while cpu() < until { for _ in 0..100_000 { hash = hash.rotate_left(5).wrapping_mul(0x100_0000_01b3) ^ 0x9e37_79b9; } } // BLOCKS
    hash
}

#[taskscope::main(worker_threads = 2)]
async fn main() {
    let ticker = tokio::spawn(async {
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        loop {
            ticks.tick().await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let spinner = tokio::spawn(async { spin(7, Duration::from_millis(700)) });
    let hash = spinner.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    ticker.abort();
    println!("stable_cpu_stall: done ({hash:x})");
}
