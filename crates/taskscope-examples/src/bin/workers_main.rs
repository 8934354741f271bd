//! A multi-thread runtime built after the probe is installed (`#[taskscope::main]`): tokio
//! runs each worker's scheduler loop inside a blocking task, which the probe then sees.
//! Nothing here stalls, and the probe must not say otherwise.

use std::time::Duration;

#[taskscope::main(worker_threads = 2)]
async fn main() {
    let mut handles = Vec::new();
    for i in 0..20u64 {
        handles.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20 * (i % 5))).await;
            i
        }));
    }
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.unwrap();
    }
    // Idle workers for a while: still no stall.
    tokio::time::sleep(Duration::from_millis(400)).await;
    println!("workers_main: {sum}");
}
