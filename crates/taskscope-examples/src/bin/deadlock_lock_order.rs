//! Two tasks take two `tokio::sync::Mutex`es in opposite orders: each holds one and waits
//! for the other, for good. `check` reports one deadlock naming both tasks, the lock each
//! waits on and who holds it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Barrier, Mutex};

async fn transfer(first: Arc<Mutex<u64>>, second: Arc<Mutex<u64>>, both_hold: Arc<Barrier>) {
    let mut from = first.lock().await;
    both_hold.wait().await;
    let mut to = second.lock().await; // WAITS: both
    *from -= 1;
    *to += 1;
}

#[tokio::main]
async fn main() {
    taskscope::init();
    let accounts = Arc::new(Mutex::new(100u64));
    let audit = Arc::new(Mutex::new(0u64));
    let both_hold = Arc::new(Barrier::new(2));
    tokio::spawn(transfer(accounts.clone(), audit.clone(), both_hold.clone())); // FAULT: deadlock
    tokio::spawn(transfer(audit, accounts, both_hold)); // CYCLE: second
    tokio::time::sleep(Duration::from_millis(4000)).await;
    println!("deadlock_lock_order: main returns; the two transfers never will");
}
