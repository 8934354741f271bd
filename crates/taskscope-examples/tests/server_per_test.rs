//! Tests that each start a server with `tokio::spawn` and never stop it, as test suites
//! often do. Run under `taskscope check`, each test's leak is one finding at the test's
//! own spawn call, naming the test, with the server's handlers and purge task (library
//! code, in `greeter/`) folded into it.

mod greeter;

use greeter::{Greeter, greet};

#[tokio::test]
async fn greets_three_clients() {
    taskscope::init();
    let (server, address) = Greeter::bind(false).await;
    tokio::spawn(server.run()); // FAULT: alive_at_shutdown
    for name in ["ada", "bob", "eve"] {
        assert_eq!(greet(address, name).await, format!("hello, {name}\n"));
    }
}

/// The same leak, and a stall of the server task at the same spawn call: accepting the
/// leak must not hide the stall.
#[tokio::test]
async fn greets_after_a_slow_start() {
    taskscope::init();
    let (server, address) = Greeter::bind(true).await;
    tokio::spawn(server.run()); // FAULT: stall
    assert_eq!(greet(address, "ada").await, "hello, ada\n");
}
