//! A task panics; `main` notices through the join handle and carries on.

#[tokio::main]
async fn main() {
    taskscope::init();
    let failing = tokio::spawn(async { panic!("boom: the config file is missing") }); // FAULT: panic
    let result = failing.await;
    println!("panicking: task failed = {}", result.is_err());
}
