//! A task computes for 500 ms without ever reaching an `.await`: a busy stall.

use std::time::{Duration, Instant};

#[inline(never)]
fn checksum(round: u64) -> u64 {
    (0..10_000u64).fold(round, |acc, x| acc.rotate_left(5) ^ std::hint::black_box(x))
}

fn crunch(budget: Duration) -> u64 {
    let start = Instant::now();
    let mut acc = 0;
    let mut round = 0;
    while start.elapsed() < budget {
        acc ^= checksum(round); // BLOCKS
        round += 1;
    }
    acc
}

#[tokio::main]
async fn main() {
    taskscope::init();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = tokio::spawn(async { crunch(Duration::from_millis(500)) }); // FAULT: stall
    println!("cpu_loop: {}", busy.await.unwrap());
}
