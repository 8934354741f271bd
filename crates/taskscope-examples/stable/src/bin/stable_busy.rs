//! On plain stable tokio, nothing wrong: a busy echo server answering clients as fast as
//! it can, a task looping on `yield_now`, and bursts of short spawns, for about
//! `STABLE_BUSY_SECS` seconds (default 3). Workers rarely park, and no poll is long.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Clients of the echo server.
const CLIENTS: usize = 4;

#[taskscope::main(worker_threads = 2)]
async fn main() {
    let secs = std::env::var("STABLE_BUSY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let until = Instant::now() + Duration::from_secs(secs);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // Echoes each of the four clients until it hangs up, and ends once all have: every
    // task is joined before `main` returns, so none is left alive at shutdown however
    // late a loaded machine lets an echo see its client hang up.
    let server = tokio::spawn(async move {
        let mut echoes = Vec::new();
        for _ in 0..CLIENTS {
            let (mut stream, _) = listener.accept().await.unwrap();
            echoes.push(tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }));
        }
        for echo in echoes {
            echo.await.unwrap();
        }
    });
    let yielder = tokio::spawn(async move {
        let mut turns = 0u64;
        while Instant::now() < until {
            tokio::task::yield_now().await;
            turns += 1;
        }
        turns
    });
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            let mut buf = [0u8; 5];
            let mut round_trips = 0u64;
            while Instant::now() < until {
                stream.write_all(b"ping\n").await.unwrap();
                stream.read_exact(&mut buf).await.unwrap();
                round_trips += 1;
            }
            round_trips
        }));
    }
    let spawner = tokio::spawn(async move {
        while Instant::now() < until {
            let burst: Vec<_> = (0..100).map(|i| tokio::spawn(async move { i * 2 })).collect();
            for task in burst {
                task.await.unwrap();
            }
        }
    });
    let mut round_trips = 0;
    for client in clients {
        round_trips += client.await.unwrap();
    }
    let turns = yielder.await.unwrap();
    spawner.await.unwrap();
    server.await.unwrap();
    println!("stable_busy: {round_trips} round trips, {turns} yields");
}
