//! Running an example program for real and reaching its probe: its command, a guard that
//! stops it whatever the test's outcome, a loopback port, and a gRPC client with the
//! token.

use std::collections::HashSet;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use taskscope_api::v1;

use crate::Location;
use crate::build::example;

/// An example's command with the probe quiet on the network and nothing inherited from
/// the caller's environment that would change what it does.
pub fn command(name: &str) -> Command {
    let mut command = Command::new(example(name));
    command
        .env("TASKSCOPE_BIND", "off")
        .env_remove("TASKSCOPE_RECORD")
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .env_remove("RUST_LOG");
    command
}

/// A running child process, killed and reaped when dropped: a failed assertion leaves
/// nothing running.
#[derive(Debug)]
pub struct Running(Option<Child>);

impl Running {
    /// Starts `command`.
    pub fn spawn(command: &mut Command) -> Self {
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{program} does not start: {e}"));
        Self(Some(child))
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the child is only taken by `stop`")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0
            .as_ref()
            .expect("the child is only taken by `stop`")
            .id()
    }

    /// Its stdin, which the command was given as a pipe; the process reads end of file
    /// once this is dropped.
    pub fn stdin(&mut self) -> ChildStdin {
        self.child()
            .stdin
            .take()
            .expect("stdin is a pipe, taken once")
    }

    /// Its standard output, when it was started with it piped (once).
    pub fn stdout(&mut self) -> ChildStdout {
        self.child()
            .stdout
            .take()
            .expect("stdout is piped, and taken once")
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child().try_wait().expect("its status can be read")
    }

    /// Kills it and returns what it wrote to the outputs it was given as pipes.
    pub fn stop(mut self) -> Output {
        let mut child = self.0.take().expect("the child is only taken by `stop`");
        let _ = child.kill();
        child.wait_with_output().expect("its output can be read")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An example serving its probe on a free loopback port, with [`TOKEN`]; stopped when
/// dropped.
#[derive(Debug)]
pub struct Served {
    /// The example's process.
    pub running: Running,
    /// The probe's port.
    pub port: u16,
}

impl Served {
    /// Starts the example `name` serving its probe on a free loopback port with
    /// [`TOKEN`]; `adjust` sets the rest of its command (more variables, its outputs).
    pub fn start(name: &str, adjust: impl FnOnce(&mut Command)) -> Self {
        let port = free_port();
        let mut command = command(name);
        command
            .env("TASKSCOPE_BIND", format!("127.0.0.1:{port}"))
            .env("TASKSCOPE_TOKEN", TOKEN);
        adjust(&mut command);
        Self {
            running: Running::spawn(&mut command),
            port,
        }
    }

    /// The probe's address as gRPC clients take it: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client of its probe, once it serves ([`connect`]).
    pub async fn connect(&self) -> Client {
        connect(&self.url()).await
    }

    /// Waits (a minute at most) until the probe's snapshot holds at least `count` live
    /// tasks spawned at `at`: every one of them spawned and taken in by the probe.
    pub fn wait_for_live_tasks(&self, at: &Location, count: usize) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut client = self.connect().await;
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut seen = None;
            while Instant::now() < deadline {
                // A refused or failed page (the snapshot's rate limits) is tried again.
                if let Ok(live) = live_tasks_at(&mut client, at).await {
                    if live >= count {
                        return;
                    }
                    seen = Some(live);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            panic!("the probe saw {seen:?} live tasks spawned at {at} in 60 s, not {count}");
        });
    }
}

/// The live tasks spawned at `at` in one snapshot of the probe (every page of it).
async fn live_tasks_at(client: &mut Client, at: &Location) -> Result<usize, tonic::Status> {
    let (mut spawned, mut ended) = (HashSet::new(), HashSet::new());
    let mut page_token = 0;
    loop {
        let page = client
            .snapshot(v1::SnapshotRequest { page_token })
            .await?
            .into_inner();
        let update = page.update.unwrap_or_default();
        spawned.extend(
            update
                .spawned
                .iter()
                .filter(|task| {
                    task.location
                        .as_ref()
                        .is_some_and(|l| l.file == at.file && l.line == at.line)
                })
                .map(|task| task.id),
        );
        ended.extend(update.ended.iter().map(|task| task.id));
        if page.next_page_token == 0 {
            return Ok(spawned.difference(&ended).count());
        }
        page_token = page.next_page_token;
    }
}

/// A free TCP port on loopback (free when asked; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The token the apps of the suites that talk to the probe over TCP are started with
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

/// Runs `command` (`taskscope events`, typically) until it prints its first line on
/// stdout, then stops it: that line, and what it wrote on stderr.
pub fn first_line_of(command: &mut Command) -> (String, Output) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first)
        .expect("its stdout can be read");
    let _ = child.kill();
    (
        first,
        child.wait_with_output().expect("its output can be read"),
    )
}
