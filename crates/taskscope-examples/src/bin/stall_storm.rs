//! Thousands of short stalls, each sampled by the stack sampler, while the stalled code
//! computes results that must come out right: sampling may interrupt the app, never change
//! what it computes.

use std::time::{Duration, Instant};

#[inline(never)]
fn busy_sum(seed: u64, budget: Duration) -> u64 {
    let start = Instant::now();
    let mut sum = 0u64;
    let mut i = 0u64;
    while start.elapsed() < budget {
        for _ in 0..1_000 {
            sum = sum.wrapping_add(std::hint::black_box(seed ^ i));
            i += 1;
        }
    }
    // The same value whatever the number of rounds: subtract what the rounds added.
    let mut check = 0u64;
    for j in 0..i {
        check = check.wrapping_add(seed ^ j);
    }
    sum.wrapping_sub(check)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    taskscope::init();
    let stalls: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let mut handles = Vec::new();
    for seed in 0..stalls {
        handles.push(tokio::spawn(async move {
            busy_sum(seed, Duration::from_millis(3))
        }));
    }
    let mut wrong = 0;
    for handle in handles {
        if handle.await.unwrap() != 0 {
            wrong += 1;
        }
    }
    assert_eq!(wrong, 0, "sampling corrupted {wrong} results");
    println!("stall_storm: {stalls} stalls, all results correct");
}
