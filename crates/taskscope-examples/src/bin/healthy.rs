//! Exercises the tokio APIs whose waiting tasks a careless checker mistakes for stuck or
//! leaked ones: channels, `Notify`, timers, `select!`, `JoinSet`, locks and a TCP accept
//! loop. Every task finishes before `main` returns; taskscope must report nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinSet;

#[tokio::main]
async fn main() {
    taskscope::init();

    let (tx, mut rx) = mpsc::channel::<u32>(4);
    let consumer = tokio::spawn(async move {
        let mut sum = 0;
        while let Some(n) = rx.recv().await {
            sum += n;
        }
        sum
    });

    let (done_tx, done_rx) = oneshot::channel::<()>();
    let waiter = tokio::spawn(async move { done_rx.await.is_ok() });

    let notify = Arc::new(Notify::new());
    let notified = tokio::spawn({
        let notify = notify.clone();
        async move { notify.notified().await }
    });

    let lock = Arc::new(Mutex::new(0u32));
    let guard = lock.clone().lock_owned().await;
    let locker = tokio::spawn({
        let lock = lock.clone();
        async move { *lock.lock().await += 1 }
    });

    let mut set = JoinSet::new();
    for i in 0..10u64 {
        set.spawn(async move {
            tokio::time::sleep(Duration::from_millis(20 * i)).await;
            i
        });
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tracing::info!(%address, "healthy: echo server listening");
    tracing::debug!("healthy: a debug line, shown only with RUST_LOG=debug");
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (mut socket, _) = accepted.unwrap();
                    tokio::spawn(async move {
                        let mut buf = [0u8; 5];
                        socket.read_exact(&mut buf).await.unwrap();
                        socket.write_all(&buf).await.unwrap();
                    });
                }
                _ = &mut stop_rx => break,
            }
        }
    });

    // Let everything sit waiting for a while: idle is not stuck.
    tokio::time::sleep(Duration::from_millis(400)).await;

    for n in 0..100 {
        tx.send(n).await.unwrap();
    }
    drop(tx);
    done_tx.send(()).unwrap();
    notify.notify_one();
    drop(guard);
    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    client.write_all(b"hello").await.unwrap();
    let mut echo = [0u8; 5];
    client.read_exact(&mut echo).await.unwrap();
    stop_tx.send(()).unwrap();

    let mut joined = 0;
    while let Some(result) = set.join_next().await {
        result.unwrap();
        joined += 1;
    }
    assert_eq!(consumer.await.unwrap(), 4950);
    assert!(waiter.await.unwrap());
    notified.await.unwrap();
    locker.await.unwrap();
    server.await.unwrap();
    assert_eq!((joined, &echo), (10, b"hello"));
    println!("healthy: all tasks finished");
}
