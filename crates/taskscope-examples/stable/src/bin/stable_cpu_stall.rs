//! On plain stable tokio: a task computes a hash on its worker for about 700 ms without a
//! single system call or `.await`, while a ticker keeps the other worker parking and
//! waking.

use std::time::{Duration, Instant};

/// Hashes `seed` round after round until `until`: work on a CPU only, all on one line so
/// that a stack sampled anywhere in it names that line.
#[rustfmt::skip]
fn spin(mut hash: u64, until: Instant) -> u64 {
    while Instant::now() < until { for _ in 0..10_000 { hash = hash.rotate_left(5).wrapping_mul(0x100_0000_01b3) ^ 0x9e37_79b9; } } // BLOCKS
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
    let spinner = tokio::spawn(async {
        let until = Instant::now() + Duration::from_millis(700);
        spin(7, until)
    });
    let hash = spinner.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    ticker.abort();
    println!("stable_cpu_stall: done ({hash:x})");
}
