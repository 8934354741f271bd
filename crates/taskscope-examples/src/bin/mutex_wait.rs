//! A task locks a `std::sync::Mutex` that another thread holds: the worker thread waits
//! for the lock instead of running other tasks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

fn bump(counter: &Mutex<u64>) -> u64 {
    let mut value = counter.lock().unwrap(); // BLOCKS
    *value += 1;
    *value
}

#[tokio::main]
async fn main() {
    taskscope::init();
    let counter = Arc::new(Mutex::new(0u64));
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = {
        let counter = counter.clone();
        std::thread::spawn(move || {
            let _guard = counter.lock().unwrap();
            held_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(700));
        })
    };
    held_rx.recv().unwrap();
    let waiter = tokio::spawn(async move { bump(&counter) }); // FAULT: stall
    println!("mutex_wait: {}", waiter.await.unwrap());
    holder.join().unwrap();
}
