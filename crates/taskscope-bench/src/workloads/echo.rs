//! `echo`: a loopback TCP echo server and a bounded set of clients, all in the same
//! runtime. Real sockets and syscalls, so instrumentation is a smaller share of each poll.

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Clients in flight at once.
const CONNECTIONS: u64 = 50;
const MESSAGE: usize = 64;

pub(super) async fn run(round_trips: u64) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on loopback")?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket));
        }
    });
    let connections = CONNECTIONS.min(round_trips).max(1);
    let per_connection = round_trips / connections;
    let clients: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(client(address, per_connection)))
        .collect();
    for result in super::join_all(clients).await? {
        result?;
    }
    Ok(())
}

async fn serve(mut socket: TcpStream) {
    let _ = socket.set_nodelay(true);
    let mut buffer = [0u8; MESSAGE];
    loop {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if socket.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn client(address: std::net::SocketAddr, round_trips: u64) -> anyhow::Result<()> {
    let mut socket = TcpStream::connect(address).await?;
    socket.set_nodelay(true)?;
    let message = [7u8; MESSAGE];
    let mut reply = [0u8; MESSAGE];
    for _ in 0..round_trips {
        socket.write_all(&message).await?;
        socket.read_exact(&mut reply).await?;
    }
    Ok(())
}
