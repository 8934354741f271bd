//! One task wakes another, which then blocks its worker thread for 400 ms while a
//! neighbour keeps ticking on the other worker: what the flight recorder's window around a
//! stall is for. It shows which worker stalled, what ran beside it, and the wake that led
//! to the stall (`TASKSCOPE_WAKERS=on`: wakes are seen on the tracing route only).

use std::time::Duration;

fn render_report() {
    // Stands for any blocking call made from async code.
    std::thread::sleep(Duration::from_millis(400)); // BLOCKS
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    taskscope::init();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (done, wait_for_data) = tokio::sync::oneshot::channel::<()>();
    let ticker = tokio::spawn(async {
        // TICKS
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let stalled = tokio::spawn(async move {
        // FAULT: stall
        let _ = wait_for_data.await;
        render_report();
    });
    let waker = tokio::spawn(async move {
        // WAKES
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = done.send(());
    });
    let _ = tokio::join!(ticker, stalled, waker);
    println!("flight_stall: done");
}
