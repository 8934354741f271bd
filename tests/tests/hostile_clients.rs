//! Careless and hostile local clients against a running app: whatever they do, the app
//! keeps running, its memory stays within a stated bound and comes back when they leave,
//! and a well-behaved client is still served. Loopback only; every loop is bounded in
//! count and in time. Figures are printed (`--nocapture`) for `docs/security.md`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use taskscope_api::v1;
use taskscope_api::v1::probe_client::ProbeClient;
use taskscope_e2e::hostile::{self, MAX_WINDOW, RawH2};
use taskscope_e2e::{
    Running, Served, TOKEN, command, first_line_of, location_of_line, taskscope, wait_until,
    with_token,
};

const MIB: u64 = 1024 * 1024;

/// The `busy` example serving on a loopback port; killed on drop.
struct App {
    served: Served,
    port: u16,
}

impl App {
    fn start(tasks: u32) -> Self {
        Self::start_with(tasks, |_| {})
    }

    fn start_with(tasks: u32, adjust: impl FnOnce(&mut std::process::Command)) -> Self {
        let served = Served::start("busy", |command| {
            command
                .env("BUSY_TASKS", tasks.to_string())
                // The first stall stack loads the binary's line tables (tens of MiB in a
                // debug build) at whatever moment a stall happens: a step in RSS that has
                // nothing to do with clients, and would blur every figure here.
                .env("TASKSCOPE_STACKS", "off")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            adjust(command);
        });
        let app = Self {
            port: served.port,
            served,
        };
        assert!(
            app.serves(Duration::from_secs(30)),
            "the app never served a snapshot"
        );
        // Every task spawned and seen by the probe, and the connections made to check
        // closed by the app again: what the tests measure starts from the app alone.
        let lives = location_of_line("src/bin/busy.rs", "tokio::spawn(async move", "spawn");
        app.served.wait_for_live_tasks(&lives, tasks as usize);
        wait_until("the app closing the connections of its checks", || {
            hostile::open_connections(app.port) == 0
        });
        app
    }

    fn pid(&self) -> u32 {
        self.served.running.pid()
    }

    fn rss(&self) -> u64 {
        hostile::rss(self.pid())
    }

    /// Whether a well-behaved client gets a snapshot within `limit`.
    fn serves(&self, limit: Duration) -> bool {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let address = self.served.url();
        runtime.block_on(async {
            let deadline = Instant::now() + limit;
            while Instant::now() < deadline {
                let attempt = tokio::time::timeout(Duration::from_secs(5), snapshot(&address));
                if let Ok(Ok(page)) = attempt.await
                    && page.update.is_some_and(|u| u.process.is_some())
                {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            false
        })
    }

    /// Asserts the app is running and its memory is below `bound`; returns the RSS.
    fn assert_within(&self, what: &str, bound: u64) -> u64 {
        assert!(hostile::alive(self.pid()), "{what}: the app died");
        let rss = self.rss();
        eprintln!("{what}: RSS {} MiB", rss / MIB);
        assert!(
            rss < bound,
            "{what}: the app holds {} MiB, over the {} MiB bound",
            rss / MIB,
            bound / MIB
        );
        rss
    }

    /// Asserts RSS falls below `bound` within 30 s: the memory clients made the app
    /// allocate comes back. The probe's own state grew meanwhile (a watched probe keeps
    /// ended tasks for its clients: about 8 MiB here), hence a margin above the baseline.
    fn settles_within(&self, what: &str, bound: u64) {
        let start = Instant::now();
        while self.rss() >= bound && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(250));
        }
        let waited = start.elapsed().as_secs_f64();
        self.assert_within(&format!("{waited:.1} s {what}"), bound);
    }

    /// The highest RSS seen while sampling for `span`.
    fn peak_over(&self, span: Duration) -> u64 {
        let start = Instant::now();
        let mut peak = 0;
        while start.elapsed() < span {
            peak = peak.max(self.rss());
            std::thread::sleep(Duration::from_millis(100));
        }
        peak
    }
}

async fn snapshot(address: &str) -> Result<v1::SnapshotPage, Box<dyn std::error::Error>> {
    let channel = tonic::transport::Endpoint::from_shared(address.to_owned())?
        .connect()
        .await?;
    let mut client = ProbeClient::with_interceptor(channel, with_token);
    Ok(client
        .snapshot(v1::SnapshotRequest { page_token: 0 })
        .await?
        .into_inner())
}

/// Unread watchers of a 5,000-task app: each costs about its byte budget, not a copy of
/// every update published since, and the memory comes back once they are gone.
#[test]
fn unread_watchers_cost_their_budget_and_give_it_back() {
    let app = App::start(5_000);
    let baseline = app.rss();
    eprintln!("baseline: RSS {} MiB", baseline / MIB);
    let mut clients: Vec<RawH2> = (0..10)
        .map(|_| RawH2::connect(app.port, MAX_WINDOW).unwrap())
        .collect();
    for client in &mut clients {
        client.call("Watch", Some(TOKEN)).unwrap();
    }
    let peak = app.peak_over(Duration::from_secs(15));
    eprintln!("10 unread watchers: peak RSS {} MiB", peak / MIB);
    assert!(
        peak < baseline + 200 * MIB,
        "10 unread watchers took the app from {} to {} MiB",
        baseline / MIB,
        peak / MIB
    );
    drop(clients);
    app.settles_within("after the watchers left", baseline + 30 * MIB);
    assert!(app.serves(Duration::from_secs(10)));
}

/// One connection asking for thousands of streams gets the per-connection limit; the
/// watchers beyond the probe's limit are refused, not queued.
#[test]
fn thousands_of_streams_on_one_connection_are_refused_beyond_the_limits() {
    let app = App::start(2_000);
    let baseline = app.rss();
    eprintln!("baseline: RSS {} MiB", baseline / MIB);
    let mut client = RawH2::connect(app.port, MAX_WINDOW).unwrap();
    for _ in 0..3_000 {
        if client.call("Watch", Some(TOKEN)).is_err() {
            break;
        }
    }
    let peak = app.peak_over(Duration::from_secs(10));
    eprintln!(
        "3,000 streams on one connection: peak RSS {} MiB",
        peak / MIB
    );
    assert!(peak < baseline + 200 * MIB, "peak {} MiB", peak / MIB);
    assert!(app.serves(Duration::from_secs(10)), "a real client starved");
    drop(client);
    app.settles_within("after the connection closed", baseline + 30 * MIB);
}

/// Clients asking for snapshots on stream after stream with every window shut, so that
/// no answer can be sent: only a few answers are held at once, the rest are refused.
#[test]
fn unread_snapshot_answers_do_not_pile_up() {
    let app = App::start(5_000);
    let baseline = app.rss();
    let mut clients: Vec<RawH2> = Vec::new();
    let start = Instant::now();
    let mut peak = 0;
    for _ in 0..100 {
        if clients.len() < 16
            && let Ok(client) = RawH2::connect(app.port, 0)
        {
            clients.push(client);
        }
        for client in &mut clients {
            let _ = client.call("Snapshot", Some(TOKEN));
        }
        peak = peak.max(app.rss());
        std::thread::sleep(Duration::from_millis(200));
        if start.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    eprintln!(
        "unread Snapshot answers for 20 s: peak RSS {} MiB",
        peak / MIB
    );
    assert!(
        peak < baseline + 60 * MIB,
        "unread answers took the app from {} to {} MiB",
        baseline / MIB,
        peak / MIB
    );
    drop(clients);
    app.settles_within("after the snapshot clients left", baseline + 30 * MIB);
    assert!(app.serves(Duration::from_secs(10)));
}

/// Many connections each resetting their streams as soon as they open them (HTTP/2
/// "rapid reset"): the watchers they leave behind are released, so the limit on watchers
/// does not lock real clients out.
#[test]
fn streams_reset_mid_flight_release_their_watchers() {
    let app = App::start(2_000);
    let baseline = app.rss();
    let start = Instant::now();
    for _ in 0..20 {
        let Ok(mut client) = RawH2::connect(app.port, MAX_WINDOW) else {
            continue;
        };
        for _ in 0..100 {
            let Ok(id) = client.call("Watch", Some(TOKEN)) else {
                break;
            };
            let _ = client.reset(id);
        }
        client.drain(Duration::from_millis(100));
        if start.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        app.serves(Duration::from_secs(10)),
        "a real client was locked out"
    );
    app.assert_within("after 2,000 reset streams", baseline + 60 * MIB);
}

/// Connections that send nothing, more of them than the app has file descriptors: they
/// are closed after the handshake timeout, the accept loop does not spin, and a real
/// client gets through.
#[test]
fn silent_connections_under_a_low_fd_limit_are_closed() {
    use std::os::unix::process::CommandExt;
    let app = App::start_with(200, |command| {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child yet.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 64,
                    rlim_max: 64,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let ticks_before = hostile::thread_cpu_ticks(app.pid(), "taskscope-probe");
    let silent: Vec<_> = (0..120)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", app.port)).ok())
        .collect();
    eprintln!(
        "{} silent connections open; app fds {}",
        silent.len(),
        hostile::fds(app.pid())
    );
    std::thread::sleep(Duration::from_secs(12));
    let ticks = hostile::thread_cpu_ticks(app.pid(), "taskscope-probe") - ticks_before;
    let cpu = ticks as f64 / hostile::ticks_per_second() as f64 / 12.0;
    eprintln!(
        "after 12 s: probe thread {:.0}% of a core, app fds {}",
        cpu * 100.0,
        hostile::fds(app.pid())
    );
    assert!(app.serves(Duration::from_secs(20)), "a real client starved");
    assert!(
        cpu < 0.5,
        "the probe thread spun at {:.0}% of a core",
        cpu * 100.0
    );
    assert!(hostile::alive(app.pid()));
    drop(silent);
}

/// Garbage, an HTTP/1.1 request and a half-sent preface: each connection is dropped, and
/// the app goes on serving.
#[test]
fn garbage_and_http1_are_turned_away() {
    use std::io::Write;
    let app = App::start(200);
    let baseline = app.rss();
    let mut noise = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..50 {
        let Ok(mut socket) = std::net::TcpStream::connect(("127.0.0.1", app.port)) else {
            continue;
        };
        let _ = socket.set_write_timeout(Some(Duration::from_secs(2)));
        let bytes: Vec<u8> = match round % 3 {
            0 => b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
            1 => b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\xff\xff\xff\xff".to_vec(),
            _ => (0..64 * 1024)
                .map(|_| {
                    noise ^= noise << 13;
                    noise ^= noise >> 7;
                    noise ^= noise << 17;
                    noise as u8
                })
                .collect(),
        };
        let _ = socket.write_all(&bytes);
    }
    assert!(app.serves(Duration::from_secs(10)));
    app.assert_within("after 50 garbage connections", baseline + 40 * MIB);
}

/// Clients looping on `Snapshot` as fast as they can cannot keep the probe's thread busy:
/// snapshots are served from the last one built (at most one a second), and calls beyond
/// the rate limit are refused at once.
#[test]
fn a_snapshot_loop_does_not_hold_the_probe_thread() {
    let app = App::start(5_000);
    let address = format!("http://127.0.0.1:{}", app.port);
    let ticks_before = hostile::thread_cpu_ticks(app.pid(), "taskscope-probe");
    let span = Duration::from_secs(10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (served, refused) = runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(address)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let loops = (0..8).map(|_| {
            let mut client = ProbeClient::with_interceptor(channel.clone(), with_token);
            tokio::spawn(async move {
                let start = Instant::now();
                let (mut served, mut refused) = (0u64, 0u64);
                while start.elapsed() < span && served + refused < 100_000 {
                    match client.snapshot(v1::SnapshotRequest { page_token: 0 }).await {
                        Ok(_) => served += 1,
                        Err(status) => {
                            assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                            refused += 1;
                        }
                    }
                }
                (served, refused)
            })
        });
        let mut total = (0, 0);
        for handle in loops.collect::<Vec<_>>() {
            let (served, refused) = handle.await.unwrap();
            total = (total.0 + served, total.1 + refused);
        }
        total
    });
    let ticks = hostile::thread_cpu_ticks(app.pid(), "taskscope-probe") - ticks_before;
    let cpu = ticks as f64 / hostile::ticks_per_second() as f64 / span.as_secs_f64();
    eprintln!(
        "Snapshot loops for 10 s: {served} served, {refused} refused; probe thread {:.0}% of a core",
        cpu * 100.0
    );
    assert!(served > 0, "no snapshot was served");
    assert!(
        cpu < 0.5,
        "the probe thread ran at {:.0}% of a core",
        cpu * 100.0
    );
    assert!(hostile::alive(app.pid()));
}

/// A second app on the same port says so and runs on without its server; the first keeps
/// serving.
#[test]
fn a_second_app_on_the_same_port_fails_clearly() {
    let first = App::start(100);
    let second = Running::spawn(
        command("busy")
            .env("TASKSCOPE_BIND", format!("127.0.0.1:{}", first.port))
            .env("TASKSCOPE_TOKEN", TOKEN)
            .env("BUSY_TASKS", "10")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(hostile::alive(second.pid()), "the second app died");
    let output = second.stop();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot listen on") && stderr.contains(&first.port.to_string()),
        "{stderr}"
    );
    assert!(
        first.serves(Duration::from_secs(10)),
        "the first app stopped serving"
    );
}

/// Watchers beyond `TASKSCOPE_MAX_WATCHERS` are refused with the reason, and a watcher
/// that leaves frees its place.
#[test]
fn watchers_beyond_the_limit_are_refused_with_a_reason() {
    let app = App::start_with(100, |command| {
        command.env("TASKSCOPE_MAX_WATCHERS", "2");
    });
    let address = format!("http://127.0.0.1:{}", app.port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(address)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = ProbeClient::with_interceptor(channel, with_token);
        let first = client
            .watch(v1::WatchRequest {})
            .await
            .expect("first watcher");
        let _second = client
            .watch(v1::WatchRequest {})
            .await
            .expect("second watcher");
        let refused = client.watch(v1::WatchRequest {}).await.unwrap_err();
        assert_eq!(
            refused.code(),
            tonic::Code::ResourceExhausted,
            "{refused:?}"
        );
        assert!(
            refused.message().contains("TASKSCOPE_MAX_WATCHERS"),
            "{refused:?}"
        );
        drop(first);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match client.watch(v1::WatchRequest {}).await {
                Ok(_) => break,
                Err(status) if Instant::now() < deadline => {
                    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
                }
                Err(status) => panic!("the place of a watcher that left stayed taken: {status:?}"),
            }
        }
    });
    assert!(hostile::alive(app.pid()));
}

/// Connections that complete the HTTP/2 handshake, then never answer again (a client
/// stopped in a debugger, a peer whose host vanished): the keepalive ping goes
/// unanswered and the probe closes them (20 s idle, then 20 s for the answer).
#[test]
fn connections_that_stop_answering_are_closed_by_keepalive() {
    let app = App::start(100);
    let silent: Vec<RawH2> = (0..10)
        .filter_map(|_| RawH2::connect(app.port, MAX_WINDOW).ok())
        .collect();
    // Counted as the app's TCP connections on its port, not as its file descriptors: the
    // probe opens files of its own as threads start polling (their scheduler totals).
    wait_until("the app accepting the silent connections", || {
        hostile::open_connections(app.port) >= silent.len()
    });
    eprintln!("{} silent HTTP/2 connections held by the app", silent.len());
    let start = Instant::now();
    while hostile::open_connections(app.port) > 0 && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(500));
    }
    let open = hostile::open_connections(app.port);
    eprintln!("after {} s: {open} still open", start.elapsed().as_secs());
    assert_eq!(open, 0, "silent connections were never closed");
    assert!(app.serves(Duration::from_secs(10)));
    drop(silent);
}

/// How long `taskscope events` may take to connect and print its first update.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `size` silent connections re-opened in a loop, more than `TASKSCOPE_MAX_CONNECTIONS`
/// (32): a newcomer takes the place of the oldest connection that has made no call, so
/// the operator's `taskscope events`, run 10 times in a row, gets its first update within
/// its connect timeout every time.
fn a_crowd_of_silent_connections_does_not_lock_the_operator_out(size: usize) {
    let limit = hostile::raise_fd_limit(size as u64 + 256);
    let size = size.min(
        usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .saturating_sub(256),
    );
    let app = App::start(200);
    let baseline = hostile::fds(app.pid());
    let crowd = hostile::Crowd::start(app.port, size);
    // The crowd has (nearly) every place taken and is re-opening what the probe closes.
    wait_until("the crowd holds the probe's connections", || {
        hostile::fds(app.pid()) >= baseline + 30
    });
    let ticks_before = hostile::thread_cpu_ticks(app.pid(), "taskscope-probe");
    let watching = Instant::now();
    let address = app.served.url();
    let timeout = format!("{}s", CONNECT_TIMEOUT.as_secs());
    for run in 1..=10 {
        let started = Instant::now();
        let (first, output) = first_line_of(
            std::process::Command::new(taskscope())
                .args(["events", "--connect-timeout", &timeout, &address])
                .env("TASKSCOPE_TOKEN", TOKEN),
        );
        let took = started.elapsed();
        eprintln!("{size} silent connections, run {run}: first update after {took:.2?}");
        assert!(
            first.starts_with('{'),
            "run {run}: no update from beside {size} silent connections within {timeout} \
             ({took:.2?}): {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let ticks = hostile::thread_cpu_ticks(app.pid(), "taskscope-probe") - ticks_before;
    let cpu = ticks as f64 / hostile::ticks_per_second() as f64 / watching.elapsed().as_secs_f64();
    let opened = crowd.stop();
    eprintln!(
        "{size} silent connections: {opened} opened in all; probe thread {:.0}% of a core",
        cpu * 100.0
    );
    assert!(hostile::alive(app.pid()), "the app died");
}

#[test]
fn silent_connections_reopened_in_a_loop_do_not_lock_the_operator_out() {
    a_crowd_of_silent_connections_does_not_lock_the_operator_out(120);
}

#[test]
fn a_thousand_silent_connections_reopened_in_a_loop_do_not_lock_the_operator_out() {
    a_crowd_of_silent_connections_does_not_lock_the_operator_out(1_000);
}
