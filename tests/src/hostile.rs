//! A deliberately careless HTTP/2 client written frame by frame, so that it can do what
//! well-behaved clients (tonic, h2) refuse to: open streams beyond the server's limit,
//! never read, open every flow-control window wide, reset streams mid-flight. Plus the
//! measurements the hostile-client tests assert on, read from `/proc`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const WINDOW_UPDATE: u8 = 0x8;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// The largest flow-control window HTTP/2 allows.
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

/// One raw HTTP/2 connection.
pub struct RawH2 {
    /// The connection.
    pub socket: TcpStream,
    next_stream: u32,
}

impl RawH2 {
    /// Connects and sends the preface, with every stream's window at `window` and the
    /// connection's opened as wide as it goes.
    pub fn connect(port: u16, window: u32) -> std::io::Result<Self> {
        let socket = TcpStream::connect(("127.0.0.1", port))?;
        socket.set_write_timeout(Some(Duration::from_secs(5)))?;
        let mut raw = Self {
            socket,
            next_stream: 1,
        };
        raw.socket.write_all(PREFACE)?;
        let mut settings = Vec::new();
        settings.extend_from_slice(&0x2u16.to_be_bytes()); // ENABLE_PUSH
        settings.extend_from_slice(&0u32.to_be_bytes());
        settings.extend_from_slice(&0x4u16.to_be_bytes()); // INITIAL_WINDOW_SIZE
        settings.extend_from_slice(&window.to_be_bytes());
        raw.frame(SETTINGS, 0, 0, &settings)?;
        raw.frame(SETTINGS, 0x1, 0, &[])?; // acknowledges the server's, unread
        raw.frame(WINDOW_UPDATE, 0, 0, &(MAX_WINDOW - 65_535).to_be_bytes())?;
        Ok(raw)
    }

    /// Opens a gRPC call of `method` (`Watch` or `Snapshot`) with an empty request;
    /// returns its stream id.
    pub fn call(&mut self, method: &str, token: Option<&str>) -> std::io::Result<u32> {
        let id = self.next_stream;
        self.next_stream += 2;
        let path = format!("/taskscope.v1.Probe/{method}");
        let mut block = Vec::new();
        let mut header = |name: &str, value: &str| {
            // Literal without indexing, new name, no Huffman coding.
            block.push(0);
            push_string(&mut block, name);
            push_string(&mut block, value);
        };
        header(":method", "POST");
        header(":scheme", "http");
        header(":path", &path);
        header(":authority", "127.0.0.1");
        header("content-type", "application/grpc");
        header("te", "trailers");
        if let Some(token) = token {
            header("authorization", &format!("Bearer {token}"));
        }
        self.frame(HEADERS, END_HEADERS, id, &block)?;
        // Both requests are empty messages: the gRPC prefix alone.
        self.frame(DATA, END_STREAM, id, &[0, 0, 0, 0, 0])?;
        Ok(id)
    }

    /// Cancels stream `id`.
    pub fn reset(&mut self, id: u32) -> std::io::Result<()> {
        self.frame(RST_STREAM, 0, id, &8u32.to_be_bytes())
    }

    /// Reads and discards whatever has arrived, for at most `limit`; the bytes read.
    pub fn drain(&mut self, limit: Duration) -> usize {
        let _ = self.socket.set_read_timeout(Some(limit));
        let mut buffer = vec![0; 64 * 1024];
        let mut total = 0;
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            match self.socket.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        total
    }

    fn frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> std::io::Result<()> {
        let mut frame = Vec::with_capacity(9 + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        frame.push(kind);
        frame.push(flags);
        frame.extend_from_slice(&stream.to_be_bytes());
        frame.extend_from_slice(payload);
        self.socket.write_all(&frame)
    }
}

fn push_string(block: &mut Vec<u8>, text: &str) {
    assert!(text.len() < 127, "short strings only: {text}");
    block.push(text.len() as u8);
    block.extend_from_slice(text.as_bytes());
}

/// The resident memory of `pid` in bytes (`VmRSS`).
pub fn rss(pid: u32) -> u64 {
    status_field(pid, "VmRSS:") * 1024
}

fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The number of open file descriptors of `pid`.
pub fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The loopback TCP connections accepted on `port` that their server still holds open
/// (`/proc/net/tcp`: established, or closed by the client and not yet by the server).
pub fn open_connections(port: u16) -> usize {
    const ESTABLISHED: &str = "01";
    const CLOSE_WAIT: &str = "08";
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&local.as_str())
                && fields
                    .get(3)
                    .is_some_and(|state| matches!(*state, ESTABLISHED | CLOSE_WAIT))
        })
        .count()
}

/// CPU time (user + system, in clock ticks) of `pid`'s threads named `name`.
pub fn thread_cpu_ticks(pid: u32, name: &str) -> u64 {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    threads
        .filter_map(|t| {
            let dir = t.ok()?.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            if comm.trim() != name {
                return None;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // Fields after the command's closing parenthesis; utime and stime are 14, 15.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// Clock ticks per second, for [`thread_cpu_ticks`].
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).unwrap_or(100)
}

/// Whether `pid` is still running (not exited, not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

/// A local process's worth of silent connections to a port: each is opened, never sent a
/// byte, and opened again as soon as the server closes it, the way a port scanner or a
/// misconfigured health checker in a loop would. Runs on a thread of its own until
/// stopped, and for [`Crowd::LONGEST`] at most.
pub struct Crowd {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Crowd {
    /// The longest a crowd keeps at it, stopped or not.
    pub const LONGEST: Duration = Duration::from_secs(300);
    /// The pause between two rounds over the connections.
    const ROUND: Duration = Duration::from_millis(10);

    /// Opens `size` silent connections to `port` on loopback and keeps them open.
    pub fn start(port: u16, size: usize) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let mut connections: Vec<Option<TcpStream>> = (0..size).map(|_| None).collect();
            let mut opened = 0;
            let mut buffer = [0; 4096];
            let start = std::time::Instant::now();
            while !stopped.load(std::sync::atomic::Ordering::Relaxed)
                && start.elapsed() < Self::LONGEST
            {
                for connection in &mut connections {
                    let open = connection
                        .as_mut()
                        .is_some_and(|c| match c.read(&mut buffer) {
                            // What the server sends (its HTTP/2 settings) is read and ignored.
                            Ok(read) => read > 0,
                            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                        });
                    if !open {
                        *connection =
                            TcpStream::connect_timeout(&address, Duration::from_millis(100))
                                .and_then(|c| c.set_nonblocking(true).map(|()| c))
                                .ok();
                        opened += u64::from(connection.is_some());
                    }
                }
                std::thread::sleep(Self::ROUND);
            }
            opened
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the crowd and closes its connections; how many it opened in all.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().unwrap_or(0))
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Raises this process's soft limit on open files to at least `wanted` where the hard
/// limit allows; the soft limit now in force.
pub fn raise_fd_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given, which lives on this stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur < wanted {
        limit.rlim_cur = wanted.min(limit.rlim_max);
        // SAFETY: setrlimit reads the struct it is given; a refusal leaves the limit as it was.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        // SAFETY: as above.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    }
    limit.rlim_cur
}
