//! A background task is spawned and never stopped: when `main` returns, the runtime shuts
//! down with the task still running (whatever it was meant to flush is lost).

use std::time::Duration;

#[tokio::main]
async fn main() {
    taskscope::init();
    tokio::spawn(async {
        // FAULT: alive_at_shutdown
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!("leak_at_shutdown: main returns");
}
