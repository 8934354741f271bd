//! The probe's metrics endpoint (`TASKSCOPE_METRICS_BIND`) as monitoring sees it: a real
//! Prometheus scrapes a stalling app and finds the stalls under the right spawn site, the
//! number of series stays bounded whatever the app spawns, and scrapers that connect and
//! say nothing keep neither the app nor other scrapers waiting. Loopback only; every loop
//! is bounded in count and time.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use taskscope_e2e::{Location, Running, command, fault_location, free_port, tools};

/// The `metrics_stall` example serving metrics on a loopback port; killed on drop.
struct App {
    _running: Running,
    address: SocketAddr,
}

impl App {
    fn start(envs: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = command("metrics_stall");
        command
            .env("TASKSCOPE_METRICS_BIND", format!("127.0.0.1:{port}"))
            .env("METRICS_STALL_SECS", "300")
            // Stacks are not what these tests look at; capturing them only adds work.
            .env("TASKSCOPE_STACKS", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in envs {
            command.env(key, value);
        }
        let app = Self {
            _running: Running::spawn(&mut command),
            address: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while app.scrape().is_none() {
            assert!(
                Instant::now() < deadline,
                "the app never served its metrics"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        app
    }

    /// The metrics text, or `None` when the endpoint does not answer within 5 s.
    fn scrape(&self) -> Option<String> {
        match get(self.address, "/metrics", None) {
            Ok((200, body)) => Some(body),
            _ => None,
        }
    }
}

#[test]
fn a_task_that_lost_its_waker_is_counted_under_its_site() {
    let port = free_port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let app = Running::spawn(
        command("lost_waker")
            .env("TASKSCOPE_METRICS_BIND", address.to_string())
            .env("TASKSCOPE_WAKERS", "on")
            .env("LOST_WAKER_WAIT_MS", "120000")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let Location { file, line, column } = fault_location("src/bin/lost_waker.rs", "lost_waker");
    let wanted = format!("site=\"{file}:{line}:{column}\"");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut text = String::new();
    let lost = loop {
        if let Ok((200, body)) = get(address, "/metrics", None) {
            text = body;
        }
        let lost = samples(&text, "taskscope_lost_wakers");
        if lost.get(&wanted).is_some_and(|&n| n >= 1.0) || Instant::now() > deadline {
            break lost;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    drop(app);
    assert_eq!(lost.get(&wanted), Some(&1.0), "{wanted} in\n{text}");
    assert_eq!(
        lost.values().sum::<f64>(),
        1.0,
        "only that task lost its waker:\n{text}"
    );
}

/// `GET target` over HTTP/1.0 (no chunked answers to decode): the status and the body.
fn get(address: SocketAddr, target: &str, accept: Option<&str>) -> std::io::Result<(u16, String)> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {target} HTTP/1.0\r\nHost: {address}\r\n{accept}\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// The sum of the samples of `name` (exactly that name, any labels) in a metrics text.
fn sum_of(text: &str, name: &str) -> f64 {
    samples(text, name).values().sum()
}

/// The samples of `name` by their label text (`site="..."`).
fn samples(text: &str, name: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (labels, value) = rest.rsplit_once("} ")?;
            Some((labels.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The value of the `site` label in a label text.
fn site_of(labels: &str) -> &str {
    labels
        .split_once("site=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or("", |(site, _)| site)
}

#[test]
fn the_endpoint_answers_in_the_format_the_scraper_asks_for() {
    let app = App::start(&[]);
    let (status, text) = get(app.address, "/metrics", None).unwrap();
    assert_eq!(status, 200);
    assert!(
        text.contains("# TYPE taskscope_stalls_total counter"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
    let openmetrics = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (status, text) = get(app.address, "/metrics", Some(openmetrics)).unwrap();
    assert_eq!(status, 200);
    assert!(text.ends_with("# EOF\n"), "{text}");
    let (status, _) = get(app.address, "/", None).unwrap();
    assert_eq!(status, 404);
}

#[test]
fn an_app_spawning_from_more_sites_than_the_limit_exposes_at_most_the_limit_and_other() {
    let app = App::start(&[("TASKSCOPE_METRICS_MAX_SITES", "3")]);
    // Ten tasks from ten sites: the body of main, eight waiting tasks, the stalling one.
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = app.scrape().unwrap_or_default();
        if sum_of(&text, "taskscope_tasks_spawned_total") >= 10.0 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "ten spawns never counted:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut sites: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(site_of)
        .filter(|site| !site.is_empty())
        .collect();
    sites.sort_unstable();
    sites.dedup();
    assert!(sites.len() <= 4, "more than 3 sites and other: {sites:?}");
    let spawned = samples(&text, "taskscope_tasks_spawned_total");
    let other = spawned.get("site=\"other\"").copied().unwrap_or(0.0);
    assert!(
        other >= 7.0,
        "the sites without a slot are not summed as other: {spawned:?}"
    );
    let live = sum_of(&text, "taskscope_tasks_live");
    assert!(live >= 10.0, "every waiting task is alive: {live}\n{text}");
}

#[test]
fn scrapers_that_connect_and_never_send_keep_neither_the_app_nor_other_scrapers_waiting() {
    let app = App::start(&[]);
    let mut silent: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(app.address).unwrap())
        .collect();
    // One that starts a request and never finishes its head.
    let mut half = TcpStream::connect(app.address).unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    silent.push(half);
    // Answered within the 5 s a scrape is given, before any silent one has timed out.
    let first = app
        .scrape()
        .expect("a scraper is answered beside silent ones");
    // The app goes on stalling (and the probe on counting) meanwhile.
    let stalls = sum_of(&first, "taskscope_stalls_total");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = sum_of(&app.scrape().unwrap_or_default(), "taskscope_stalls_total");
        if now >= stalls + 2.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the stall count stayed at {now}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // And the endpoint lets the silent connections go.
    for stream in &mut silent {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        // Read to the end: whatever the endpoint says first, it must then close.
        match stream.read_to_end(&mut Vec::new()) {
            Ok(_) => {}
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "a silent connection was kept open for 30 s"
            ),
        }
    }
}

#[test]
fn silent_connections_that_take_every_slot_are_closed_so_scrapers_get_in_again() {
    let app = App::start(&[("TASKSCOPE_MAX_CONNECTIONS", "2")]);
    let _silent: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(app.address).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if app.scrape().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no scrape answered in 30 s while two silent connections were open"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Prometheus itself, scraping one target every second; killed on drop.
struct Prometheus {
    _running: Running,
    address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus; fails the test when it is not installed ([`tools::require`]).
    fn start(target: SocketAddr) -> Self {
        tools::require("prometheus", "--version", "prometheus");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let running = Running::spawn(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={address}"))
                .arg("--log.level=warn")
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let prometheus = Self {
            _running: running,
            address,
            _dir: dir,
        };
        prometheus.wait_ready();
        prometheus
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(get(self.address, "/-/ready", None), Ok((200, _))) {
            assert!(Instant::now() < deadline, "prometheus never got ready");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The sum of the values of an instant query's answer; `None` when it is empty.
    fn value(&self, query: &str) -> Option<f64> {
        let target = format!("/api/v1/query?query={}", percent_encode(query));
        let (status, body) = get(self.address, &target, None).ok()?;
        assert_eq!(status, 200, "{query}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        let results = answer["data"]["result"].as_array()?;
        let values: Vec<f64> = results
            .iter()
            .filter_map(|r| r["value"][1].as_str()?.parse().ok())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
#[cfg_attr(missing_prometheus, ignore = "needs prometheus")]
fn prometheus_scrapes_the_stalls_of_the_right_spawn_site_into_its_histogram() {
    let app = App::start(&[]);
    let prometheus = Prometheus::start(app.address);
    let Location { file, line, column } = fault_location("src/bin/metrics_stall.rs", "stall");
    let selector = format!("{{job=\"app\",site=\"{file}:{line}:{column}\"}}");
    let stalls = format!("taskscope_stalls_total{selector}");
    let ended = format!("taskscope_stall_duration_seconds_count{selector}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (counted, measured) = (prometheus.value(&stalls), prometheus.value(&ended));
        if counted.is_some_and(|n| n > 0.0) && measured.is_some_and(|n| n > 0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had a stall of {selector}: {stalls} = {counted:?}, {ended} = \
             {measured:?}, up = {:?}",
            prometheus.value("up")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Every stall blocked for 300 ms: none in the buckets up to 0.1 s, all in +Inf, and
    // their sum at least 0.2 s each.
    let bucket = |le: &str| {
        let labels = selector.replace('}', &format!(",le=\"{le}\"}}"));
        prometheus.value(&format!("taskscope_stall_duration_seconds_bucket{labels}"))
    };
    let (fast, all) = (bucket("0.1"), bucket("+Inf"));
    let sum = prometheus.value(&format!("taskscope_stall_duration_seconds_sum{selector}"));
    let measured = prometheus.value(&ended).unwrap();
    assert_eq!(fast, Some(0.0), "a 300 ms stall counted as at most 100 ms");
    assert!(
        all.is_some_and(|n| n >= measured),
        "+Inf holds {all:?} of {measured}"
    );
    assert!(
        sum.is_some_and(|s| s >= 0.2 * measured),
        "sum {sum:?} of {measured} stalls"
    );
    // The tasks that only wait never stalled.
    let elsewhere = prometheus
        .value(&format!(
            "sum(taskscope_stalls_total{{job=\"app\",site!=\"{file}:{line}:{column}\"}})"
        ))
        .unwrap_or(0.0);
    assert_eq!(elsewhere, 0.0, "stalls counted for other sites");
}
