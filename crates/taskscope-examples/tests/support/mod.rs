//! Running example programs for real and reading what their probe said.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use taskscope_api::v1;

pub mod hostile;

/// The path of an example binary of this package.
pub fn example(name: &str) -> PathBuf {
    let path = match name {
        "healthy" => env!("CARGO_BIN_EXE_healthy"),
        "blocking_sleep" => env!("CARGO_BIN_EXE_blocking_sleep"),
        "cpu_loop" => env!("CARGO_BIN_EXE_cpu_loop"),
        "lost_waker" => env!("CARGO_BIN_EXE_lost_waker"),
        "leak_at_shutdown" => env!("CARGO_BIN_EXE_leak_at_shutdown"),
        "panicking" => env!("CARGO_BIN_EXE_panicking"),
        "aborted" => env!("CARGO_BIN_EXE_aborted"),
        "nested" => env!("CARGO_BIN_EXE_nested"),
        "forever" => env!("CARGO_BIN_EXE_forever"),
        "fifo_read" => env!("CARGO_BIN_EXE_fifo_read"),
        "mutex_wait" => env!("CARGO_BIN_EXE_mutex_wait"),
        "stall_storm" => env!("CARGO_BIN_EXE_stall_storm"),
        "workers_main" => env!("CARGO_BIN_EXE_workers_main"),
        "main_stall" => env!("CARGO_BIN_EXE_main_stall"),
        "waiting_at_shutdown" => env!("CARGO_BIN_EXE_waiting_at_shutdown"),
        "hooks_route" => env!("CARGO_BIN_EXE_hooks_route"),
        "custom_panic_hook" => env!("CARGO_BIN_EXE_custom_panic_hook"),
        "starved" => env!("CARGO_BIN_EXE_starved"),
        "service" => env!("CARGO_BIN_EXE_service"),
        "service_layer" => env!("CARGO_BIN_EXE_service_layer"),
        "service_plain" => env!("CARGO_BIN_EXE_service_plain"),
        "busy" => env!("CARGO_BIN_EXE_busy"),
        "metrics_stall" => env!("CARGO_BIN_EXE_metrics_stall"),
        "stalled_dump" => env!("CARGO_BIN_EXE_stalled_dump"),
        other => panic!("no example {other}"),
    };
    PathBuf::from(path)
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The token the apps of the tests that talk to the probe over TCP are started with
/// (`TASKSCOPE_TOKEN`), and that [`connect`] presents.
pub const TOKEN: &str = "probe-live-test-token-0123456789";

/// A probe client that presents [`TOKEN`].
pub type Client = taskscope_api::v1::probe_client::ProbeClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
    >,
>;

/// Adds [`TOKEN`] to a request.
pub fn with_token(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    let value = taskscope_api::token::bearer(TOKEN).parse().unwrap();
    request
        .metadata_mut()
        .insert(taskscope_api::token::HEADER, value);
    Ok(request)
}

/// A client of the probe at `address` (`http://host:port`) presenting [`TOKEN`], retrying
/// for up to 10 s while the example starts.
pub async fn connect(address: &str) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tonic::transport::Endpoint::from_shared(address.to_owned())
            .unwrap()
            .connect()
            .await
        {
            Ok(channel) => {
                return taskscope_api::v1::probe_client::ProbeClient::with_interceptor(
                    channel,
                    with_token as _,
                );
            }
            Err(e) if Instant::now() > deadline => panic!("cannot connect to {address}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// An example's command with the probe quiet on the network.
pub fn command(name: &str) -> Command {
    let mut command = Command::new(example(name));
    command
        .env("TASKSCOPE_BIND", "off")
        .env_remove("TASKSCOPE_RECORD")
        .env_remove("RUST_LOG");
    command
}

/// Runs an example to completion with a recording; returns its output and the folded
/// recording.
pub fn run_recorded(name: &str, envs: &[(&str, &str)]) -> (Output, Folded) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = command(name);
    command.env("TASKSCOPE_RECORD", dir.path());
    for (key, value) in envs {
        command.env(key, value);
    }
    let output = command.output().expect("example runs");
    let recording = single_recording(dir.path());
    (output, Folded::read(&recording))
}

/// The one recording in `dir`.
pub fn single_recording(dir: &Path) -> PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tsrec"))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "expected one recording in {dir:?}: {files:?}"
    );
    files.into_iter().next().unwrap()
}

/// The spawn location of the line marked `// FAULT: <kind>` in an example's source: the
/// `tokio::spawn` on that line or, when rustfmt moved the comment into the spawned block,
/// on one of the few lines above it.
pub fn fault_location(source: &str, kind: &str) -> (String, u32, u32) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let marker = format!("// FAULT: {kind}");
    let marked = lines
        .iter()
        .position(|l| l.contains(&marker))
        .unwrap_or_else(|| panic!("no {marker} in {source}"));
    let (index, column) = (marked.saturating_sub(3)..=marked)
        .rev()
        .find_map(|i| Some((i, lines[i].find("tokio::spawn")?)))
        .unwrap_or_else(|| panic!("no tokio::spawn at or above {source}:{}", marked + 1));
    let file = format!("crates/taskscope-examples/{source}");
    (file, index as u32 + 1, column as u32 + 1)
}

/// The 1-based line of the line marked `// <marker>` in an example's source.
pub fn marked_line(source: &str, marker: &str) -> u32 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
    let text = std::fs::read_to_string(&path).unwrap();
    let marker = format!("// {marker}");
    text.lines()
        .position(|l| l.trim_end().ends_with(&marker))
        .unwrap_or_else(|| panic!("no {marker} in {source}")) as u32
        + 1
}

/// One task as the stream described it.
#[derive(Debug, Default, Clone)]
pub struct Task {
    pub spawned: v1::TaskSpawned,
    pub stats: Option<v1::TaskStats>,
    pub ended: Option<v1::TaskEnded>,
}

impl Task {
    pub fn outcome(&self) -> Option<v1::Outcome> {
        self.ended
            .as_ref()
            .map(|e| v1::Outcome::try_from(e.outcome).unwrap())
    }

    pub fn location(&self) -> (String, u32, u32) {
        let l = self.spawned.location.clone().unwrap_or_default();
        (l.file, l.line, l.column)
    }
}

/// A recording or stream folded into its final state.
#[derive(Debug, Default)]
pub struct Folded {
    pub updates: usize,
    pub process: Option<v1::ProcessInfo>,
    pub tasks: BTreeMap<u64, Task>,
    pub stalls: BTreeMap<u64, v1::Stall>,
    pub threads: BTreeMap<u32, v1::ThreadState>,
    pub exited: bool,
    pub truncated: bool,
}

impl Folded {
    pub fn read(path: &Path) -> Self {
        let recording = taskscope_api::recording::read_all(path).expect("recording reads");
        let mut folded = Folded {
            truncated: recording.truncated_at.is_some(),
            ..Default::default()
        };
        for update in recording.updates {
            folded.apply(update);
        }
        folded
    }

    pub fn apply(&mut self, update: v1::Update) {
        self.updates += 1;
        if update.process.is_some() {
            self.process = update.process;
        }
        for spawned in update.spawned {
            let id = spawned.id;
            self.tasks.entry(id).or_default().spawned = spawned;
        }
        for stats in update.stats {
            let id = stats.id;
            self.tasks.entry(id).or_default().stats = Some(stats);
        }
        for ended in update.ended {
            let id = ended.id;
            self.tasks.entry(id).or_default().ended = Some(ended);
        }
        for stall in update.stalls {
            self.stalls.insert(stall.stall_id, stall);
        }
        if let Some(runtime) = update.runtime {
            for thread in runtime.threads {
                self.threads.insert(thread.thread, thread);
            }
        }
        self.exited |= update.process_exited;
    }

    /// Tasks spawned with `tokio::spawn` & co (not the runtime's `block_on`).
    pub fn spawned_tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks
            .values()
            .filter(|t| t.spawned.kind == v1::TaskKind::Task as i32)
    }

    pub fn task_at(&self, location: &(String, u32, u32)) -> &Task {
        self.tasks
            .values()
            .find(|t| &t.location() == location)
            .unwrap_or_else(|| panic!("no task spawned at {location:?}: {:#?}", self.tasks))
    }
}

/// Polls `f` until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(value) = f() {
            return Some(value);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
