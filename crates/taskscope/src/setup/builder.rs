//! Setting the probe up: [`init`] for the one-liner, [`Builder`] for code, and
//! [`Builder::build`] for apps that compose their own tracing subscriber.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tracing_core::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::base::config::{Bind, Config, Holders, Route, Wakers};
use crate::base::diag;
use crate::observe::layer::{ProbeFilter, ProbeLayer};
use crate::setup::exit;
use crate::setup::probe::{self, InitError, Probe};
use crate::tasks::outcome;
use crate::tasks::shared::Shared;

/// Settings for the probe. Start from [`Builder::from_env`] (what [`init`] uses) or
/// [`Builder::new`] (defaults only, no environment).
#[derive(Debug, Clone, Default)]
pub struct Builder {
    config: Config,
}

impl Builder {
    /// Default settings, ignoring the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Default settings overridden by the `TASKSCOPE_*` environment variables (invalid
    /// values are reported on stderr and ignored).
    pub fn from_env() -> Self {
        let mut config = Config::default();
        config.apply_env(|name| std::env::var(name).ok());
        Self { config }
    }

    /// Where to serve the gRPC API: `127.0.0.1:6670` (default), `unix:/path`, or `off`.
    /// An unparsable address is reported and leaves the setting unchanged.
    pub fn bind(mut self, address: &str) -> Self {
        match Bind::parse(address) {
            Ok(bind) => self.config.bind = bind,
            Err(problem) => diag::warn(&format!("bind address {address:?}: {problem}")),
        }
        self
    }

    /// Records the update stream to `path` (a file, or an existing directory in which
    /// `<program>-<pid>.tsrec` is created).
    pub fn record(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.record = Some(path.into());
        self
    }

    /// A poll longer than this is a stall (default 100 ms).
    pub fn stall_threshold(mut self, threshold: Duration) -> Self {
        if !threshold.is_zero() {
            self.config.stall_threshold = threshold;
        }
        self
    }

    /// How often changes are published to watchers and the recording (default 100 ms).
    /// Stalls are published at once regardless.
    pub fn publish_interval(mut self, interval: Duration) -> Self {
        self.config.publish_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Tracks wakers (wakes, waker counts, scheduled time, lost-waker detection). Off by
    /// default: tokio then emits an event for every waker operation, which costs the app
    /// far more than the rest of the probe (see `docs/performance.md`). Only the tracing
    /// route sees wakers: on the hooks route this is ignored, with a warning.
    pub fn waker_tracking(mut self, on: bool) -> Self {
        self.config.wakers = if on { Wakers::On } else { Wakers::Off };
        self
    }

    /// Tracks who holds each tokio `Mutex`, `RwLock` and `Semaphore` and who waits on it
    /// (`TASKSCOPE_HOLDERS`), which finds deadlocks of locks and permits. On by default;
    /// it costs about 2 µs per acquire (`docs/performance.md`), so an app that takes locks
    /// in a hot loop may turn it off: tokio then creates no resource spans for the probe,
    /// clients are told holders were turned off here, and `check` finds only deadlocks of
    /// tasks joined through `taskscope::join`. Only the tracing route sees holders.
    pub fn holder_tracking(mut self, on: bool) -> Self {
        self.config.holders = if on {
            Holders::On
        } else {
            Holders::Off(Holders::OFF_BY_BUILDER)
        };
        self
    }

    /// The flight recorder's memory in bytes (default 8 MiB; from 256 KiB to 1 GiB), or
    /// `None` to turn it off: each thread records its polls, spawns, ends and wakes in a
    /// ring of its own, and every stall's report carries what all threads did around it
    /// (`docs/guide.md`, "Flight recorder"). An out-of-range size is clamped.
    pub fn flight_recorder(mut self, bytes: Option<usize>) -> Self {
        self.config.flight = bytes.map(crate::base::flight_budget::FlightBudget::clamped);
        self
    }

    /// How far before a stall its flight-recorder window starts (default 2 s).
    pub fn flight_span(mut self, span: Duration) -> Self {
        self.config.flight_span = span;
        self
    }

    /// How long ended tasks stay visible to clients (default 60 s, at most 10,000 tasks).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.config.retention = retention;
        self
    }

    /// Also serves tokio-console's protocol on `address` (`host:port`, `unix:/path`, or
    /// `off`, the default), so tokio-console can attach; `TASKSCOPE_CONSOLE_BIND` in the
    /// environment. Needs the `console` cargo feature, and only [`Builder::init`] installs
    /// it (with [`Builder::build`], add `console_subscriber::spawn()` to your subscriber).
    ///
    /// It embeds console-subscriber, whose cost per poll is many times the probe's: see
    /// `docs/interop.md` before switching it on in production.
    pub fn console_bind(mut self, address: &str) -> Self {
        match Bind::parse(address) {
            Ok(bind) => self.config.console_bind = bind,
            Err(problem) => diag::warn(&format!("console bind address {address:?}: {problem}")),
        }
        self
    }

    /// Captures the stalled thread's stack (default on, where the platform allows).
    pub fn capture_stacks(mut self, on: bool) -> Self {
        self.config.capture_stacks = on;
        self
    }

    /// The token TCP clients must present (`TASKSCOPE_TOKEN`; at least 16 visible ASCII
    /// characters). Without one, a random token is drawn and written to a file only the
    /// app's user can read, where the CLI finds it (`docs/security.md`). `"off"` serves
    /// loopback without a token. An unusable token is reported and leaves the setting
    /// unchanged.
    pub fn token(mut self, token: &str) -> Self {
        match crate::base::config::TokenSetting::parse(token) {
            Ok(setting) => self.config.token = setting,
            Err(problem) => diag::warn(&format!("the probe's token is unusable: {problem}")),
        }
        self
    }

    /// Allows serving on an address other than loopback (`TASKSCOPE_ALLOW_REMOTE=1`); off
    /// by default, since anyone who reaches the port can read the app's internals.
    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.config.allow_remote = allow;
        self
    }

    /// Most clients streaming at once (`TASKSCOPE_MAX_WATCHERS`, default 16); one more
    /// is refused with `RESOURCE_EXHAUSTED`.
    pub fn max_watchers(mut self, watchers: usize) -> Self {
        self.config.limits.max_watchers = watchers.max(1);
        self
    }

    /// Most connections at once (`TASKSCOPE_MAX_CONNECTIONS`, default 32); one more takes
    /// the place of the oldest that has made no call yet (a client with the token keeps
    /// its place), or is closed as soon as it is accepted when every connection has.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.config.limits.max_connections = connections.max(1);
        self
    }

    /// Serves Prometheus metrics (stalls, leaks, the probe's drops) at `GET /metrics` on
    /// `address` (`host:port`, `unix:/path`, or `off`, the default);
    /// `TASKSCOPE_METRICS_BIND` in the environment. Loopback only unless
    /// [`Builder::allow_remote`]: the endpoint has no token. `docs/monitoring.md` lists
    /// the metrics. An unusable address is reported and leaves the setting unchanged.
    ///
    /// ```no_run
    /// let probe = taskscope::Builder::from_env()
    ///     .metrics_bind("127.0.0.1:9464")
    ///     .init_with_hooks();
    /// ```
    pub fn metrics_bind(mut self, address: &str) -> Self {
        match Bind::parse(address) {
            Ok(bind) => self.config.metrics.bind = bind,
            Err(problem) => diag::warn(&format!("metrics address {address:?}: {problem}")),
        }
        self
    }

    /// Exports every stall, with its stack, as an OpenTelemetry log record over OTLP/gRPC
    /// to `endpoint` (`http://host:port`, or `off`, the default);
    /// `TASKSCOPE_OTLP_ENDPOINT` in the environment. Needs the `otlp` cargo feature
    /// (without it, the setting is ignored with a warning). See `docs/monitoring.md`.
    pub fn otlp_endpoint(mut self, endpoint: &str) -> Self {
        match crate::base::config::parse_otlp_endpoint(endpoint) {
            Ok(endpoint) => self.config.otlp_endpoint = endpoint,
            Err(problem) => diag::warn(&format!("OTLP endpoint {endpoint:?}: {problem}")),
        }
        self
    }

    /// Most spawn sites with metric series of their own (`TASKSCOPE_METRICS_MAX_SITES`,
    /// default 50): the busiest sites get them, all others are summed as `site="other"`,
    /// so that the number of series stays bounded whatever the app spawns.
    pub fn metrics_max_sites(mut self, sites: usize) -> Self {
        self.config.metrics.max_sites = sites.max(1);
        self
    }

    /// Serves gRPC over TLS with this certificate and private key (PEM files;
    /// `TASKSCOPE_TLS_CERT` and `TASKSCOPE_TLS_KEY`). Clients connect to `https://ADDR`
    /// with `--tls-ca` naming the certificate (or its CA). Needs the `tls` cargo feature.
    /// The files are read when the probe starts: a missing or unusable one is reported on
    /// stderr, and the probe then serves nothing rather than serve in plain text.
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.config.tls = crate::base::config::TlsFiles {
            cert: Some(cert.into()),
            key: Some(key.into()),
        };
        self
    }

    /// Starts the probe and returns its layer, for apps that build their own subscriber:
    ///
    /// ```no_run
    /// use tracing_subscriber::prelude::*;
    /// let (layer, _probe) = taskscope::Builder::from_env().build().expect("probe starts");
    /// tracing_subscriber::registry()
    ///     .with(layer)
    ///     .with(tracing_subscriber::fmt::layer())
    ///     .init();
    /// ```
    pub fn build<S>(self) -> Result<(ProbeLayer<S>, Probe), InitError>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if self.config.console_bind != Bind::Off {
            diag::warn(&format!(
                "the tokio-console address ({}) is only served by Builder::init(); with your \
                 own subscriber, add console_subscriber::spawn() to it",
                self.config.console_bind
            ));
        }
        self.build_probe()
    }

    fn build_probe<S>(self) -> Result<(ProbeLayer<S>, Probe), InitError>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let probe = self.start_for_layer()?;
        crate::observe::reach::composed();
        Ok((
            crate::observe::layer::new(probe.shared.clone(), true),
            probe.clone(),
        ))
    }

    /// Starts a probe whose layer goes into the app's own subscriber: the tracing route.
    fn start_for_layer(mut self) -> Result<&'static Probe, InitError> {
        self.config.route = Route::Tracing;
        self.start()
    }

    /// Starts the process's probe, or returns the one already running (see [`Probe`]).
    fn start(self) -> Result<&'static Probe, InitError> {
        let (probe, already) = probe::get_or_start(|| self.start_new())?;
        if already {
            static WARNED: AtomicBool = AtomicBool::new(false);
            diag::warn_once(
                &WARNED,
                "a probe already runs in this process: it is used, and the settings given for a \
                 second one are not (a process has one probe)",
            );
        }
        Ok(probe)
    }

    fn start_new(self) -> Result<Probe, InitError> {
        crate::base::clock::start();
        outcome::install_panic_hook();
        warn_if_uninstrumented(self.config.uses_hooks());
        let mut config = self.config;
        let listener = match crate::serve::server::bind(&config.bind, config.allow_remote) {
            Ok(listener) => listener,
            Err(e) => {
                diag::warn(&format!(
                    "cannot listen on {}: {e}; the probe runs without its gRPC server \
                     (set TASKSCOPE_BIND to a free address, unix:/path, or off)",
                    config.bind
                ));
                None
            }
        };
        let (listener, tls) = match listener {
            Some(listener) => with_tls(&mut config, listener),
            None => (None, None),
        };
        let bind = listener.as_ref().map(|_| config.bind.to_string());
        let metrics = crate::serve::metrics::bind(&config);
        let shared = Shared::new(config);
        let commands = crate::serve::runner::start(shared.clone(), listener, metrics, tls)
            .map_err(InitError::Threads)?;
        exit::flush_at_exit();
        Ok(Probe {
            shared,
            commands,
            bind,
        })
    }

    /// Starts the probe and installs it as the global tracing subscriber, together with a
    /// `fmt` layer for the app's own logs that honours `RUST_LOG` (default `info`). Tasks
    /// are seen through tokio's tracing spans, on every runtime of the process.
    ///
    /// Called inside a runtime, that runtime is reachable for await-chain dumps until the
    /// process exits, as with [`init`].
    ///
    /// Calling it again (or after [`init`]) does nothing and returns the running probe.
    pub fn init(self) -> Result<Probe, InitError> {
        let probe = self.install(false)?;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            // The runtime lives until `main` returns: reachable for dumps till then.
            let ending = crate::tasks::runtimes::Ending::Unseen;
            std::mem::forget(crate::tasks::runtimes::register_as(&runtime, ending));
        }
        Ok(probe)
    }

    /// As [`Builder::init`], but on the hooks route: tasks are seen through tokio's
    /// runtime hooks, which costs a fraction of the tracing route per poll and per spawn
    /// (`docs/performance.md`), on the runtimes given the hooks with
    /// [`crate::hooks::install`]. `#[taskscope::main]` and `#[taskscope::test]` do both.
    ///
    /// Falls back to [`Builder::init`] (and says why in `docs/guide.md`, "Routes") when
    /// waker tracking is on or `TASKSCOPE_ROUTE=tracing`: only tokio's spans carry
    /// wakers, task names, blocking tasks and aborts.
    pub fn init_with_hooks(self) -> Result<Probe, InitError> {
        let hooks = self.config.uses_hooks();
        self.install(hooks)
    }

    fn install(mut self, hooks: bool) -> Result<Probe, InitError> {
        // From here on, the route in the config is the one taken (clients are told).
        self.config.route = if hooks { Route::Hooks } else { Route::Tracing };
        static INSTALLING: Mutex<()> = Mutex::new(());
        // Tests often call `init()` from many threads at once: one installs, the rest wait
        // and get the same probe. A probe already running (started by any route) is the
        // process's: no second route is installed next to it, which would count its tasks
        // twice.
        let _installing = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(probe) = probe::running() {
            return Ok(probe.clone());
        }
        if hooks {
            self.install_hooks()
        } else {
            self.install_subscriber()
        }
    }

    /// The hooks route: tokio's runtime hooks report the tasks, so the probe needs no
    /// tracing subscriber and installs none. The app's own `tracing_subscriber::...init()`,
    /// before or after, succeeds and logs exactly what it would without the probe.
    fn install_hooks(mut self) -> Result<Probe, InitError> {
        let wakers = std::mem::replace(&mut self.config.wakers, Wakers::Off);
        if wakers == Wakers::On {
            diag::warn(
                "TASKSCOPE_WAKERS=on is ignored on the hooks route (#[taskscope::main], \
                 #[taskscope::test]): only tokio's tracing spans carry wakers. Set \
                 TASKSCOPE_ROUTE=tracing too (the probe then installs itself as the global \
                 tracing subscriber), or call taskscope::init() under #[tokio::main]",
            );
        }
        if self.config.console_bind != Bind::Off {
            diag::warn(&format!(
                "TASKSCOPE_CONSOLE_BIND={} is ignored on the hooks route: tokio-console reads \
                 tokio's tracing spans; set TASKSCOPE_ROUTE=tracing to serve it",
                self.config.console_bind
            ));
        }
        Ok(self.start()?.clone())
    }

    /// The tracing route: the probe (and a `RUST_LOG`-filtered log output, and
    /// tokio-console's layer when asked) as the process's global tracing subscriber.
    fn install_subscriber(self) -> Result<Probe, InitError> {
        if tracing::dispatcher::has_been_set() {
            return Err(InitError::SubscriberAlreadySet);
        }
        let log_to_stderr = self.config.log_to_stderr;
        let wants = ProbeFilter::new(
            self.config.waker_tracking(),
            true,
            self.config.holder_tracking(),
        );
        let console = crate::serve::console::layer(
            &self.config.console_bind,
            self.config.retention,
            self.config.allow_remote,
        );
        let probe = self.start()?;
        let shared = probe.shared.clone();
        let installed = if console.is_some() {
            // console-subscriber needs callsites (resources, async ops) that neither part of
            // the combined layer wants, and would lose them to its `never`: compose the
            // general way, each layer filtered on its own.
            let layer = crate::observe::layer::new(shared, true);
            let logs = log_to_stderr.then(|| {
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(crate::observe::init_layer::log_filter())
            });
            tracing_subscriber::registry()
                .with(layer)
                .with(logs)
                .with(console)
                .try_init()
        } else {
            let layer = crate::observe::init_layer::InitLayer::new(
                crate::observe::layer::TaskLayer::new(shared),
                wants,
                log_to_stderr,
            );
            tracing_subscriber::registry().with(layer).try_init()
        };
        installed.map_err(|_| InitError::SubscriberAlreadySet)?;
        crate::observe::reach::installed();
        Ok(probe.clone())
    }
}

/// Installs the probe with settings from the environment, as the global tracing
/// subscriber (plus a `RUST_LOG`-honouring log output). Call it first thing in `main`, or
/// at the start of a test; calling it again is harmless.
///
/// It never fails the app: if the probe cannot be installed, the reason is printed on
/// stderr and the app runs on without it.
///
/// Called inside `#[tokio::main]` (or `#[tokio::test]`), it runs in a body tokio started
/// before the probe existed, whose polls no span marks. The probe then watches that
/// body's thread from outside (`body_watch.rs`), so that a body kept away from the
/// runtime (a blocking sleep or read, a computation) past the stall threshold is still
/// reported as a stall, at this call. Where that cannot be done (called from inside a
/// spawned task, or a platform without Linux's `/proc/<tid>/syscall`), it says so once on
/// stderr, and `taskscope check` in a note naming this call (`ProcessInfo.unobserved_body`
/// on the wire); `#[taskscope::main]` sees every poll of the body exactly.
#[track_caller]
pub fn init() {
    let caller = std::panic::Location::caller();
    let mut builder = Builder::from_env();
    let body = crate::detect::body_watch::in_unseen_body();
    let unwatchable = body
        .then(crate::detect::body_watch::cannot_watch_this_thread)
        .flatten();
    if let Some(why) = unwatchable {
        let at = format!("{}:{}:{}", caller.file(), caller.line(), caller.column());
        static UNWATCHED: AtomicBool = AtomicBool::new(false);
        diag::warn_once(
            &UNWATCHED,
            &format!(
                "taskscope::init() was called at {at}, {why}: a stall in the body that \
                 called it is not seen; #[taskscope::main] (or #[taskscope::test]) in place \
                 of tokio's macro sees it"
            ),
        );
        builder.config.unobserved_body = Some(at);
    }
    match builder.init() {
        Ok(_) => {
            if body && unwatchable.is_none() {
                crate::detect::body_watch::watch_this_thread(caller);
            }
        }
        Err(e) => {
            static WARNED: AtomicBool = AtomicBool::new(false);
            diag::warn_once(&WARNED, &e.to_string());
        }
    }
}

/// The probe as a layer for the app's own tracing subscriber: the tracing route for apps
/// that set up their logging themselves, where [`init`] (which installs a subscriber of
/// its own) would make the app's `init()`/`try_init()` fail.
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
/// use tracing_subscriber::{EnvFilter, fmt};
///
/// tracing_subscriber::registry()
///     .with(fmt::layer().with_filter(EnvFilter::from_default_env()))
///     .with(taskscope::layer())
///     .init();
/// ```
///
/// The layer carries its own filter: it takes tokio's task spans (and waker events when
/// waker tracking is on) and nothing else, so it neither enables nor hides anything for
/// the app's other layers, whatever `RUST_LOG` says. Give the app's log layer a filter of
/// its own (as above): a layer without one logs every TRACE event of every crate.
///
/// Settings come from the environment, as for [`init`]. Every call returns a layer over
/// the same probe (one subscriber per test, say). It is `None`, which composes as a layer
/// that does nothing, when the probe cannot start (the reason is printed once) or when
/// `#[taskscope::main]`/`#[taskscope::test]` already observe the tasks through tokio's
/// runtime hooks, so that no task is counted twice.
pub fn layer<S>() -> Option<ProbeLayer<S>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if probe::on_hooks().is_some() {
        return None;
    }
    // Every call after the first finds the probe running: the same probe, said nothing.
    let started = match probe::running() {
        Some(probe) => Ok(probe),
        None => Builder::from_env().start_for_layer(),
    };
    crate::observe::reach::composed();
    match started {
        Ok(probe) => Some(crate::observe::layer::new(probe.shared.clone(), true)),
        Err(e) => {
            static WARNED: AtomicBool = AtomicBool::new(false);
            diag::warn_once(&WARNED, &format!("{e}; the app runs on without the probe"));
            None
        }
    }
}

/// The listener with the TLS identity the config asks for. TLS that cannot be had means
/// no server at all (said on stderr), never a plain-text one in its place; a Unix socket,
/// private to the user already, is served without TLS.
fn with_tls(
    config: &mut crate::base::config::Config,
    listener: crate::serve::server::Listener,
) -> (
    Option<crate::serve::server::Listener>,
    Option<crate::serve::tls::ServerTls>,
) {
    let asked = config.tls != crate::base::config::TlsFiles::default();
    if asked && matches!(config.bind, Bind::Unix(_)) {
        diag::warn(&format!(
            "TLS is for TCP: {} is private to this user (0600) and is served without it",
            config.bind
        ));
        config.tls = crate::base::config::TlsFiles::default();
    }
    match crate::serve::tls::load(&config.tls) {
        Ok(tls) => (Some(listener), tls),
        Err(problem) => {
            diag::warn(&format!(
                "{problem}; the probe runs without its gRPC server rather than serve \
                 without TLS"
            ));
            (None, None)
        }
    }
}

/// Says once, loudly, when tokio cannot be observed at all, and what the probe sees
/// instead under the macros (the hooks route), where tokio's thread hooks show the workers.
fn warn_if_uninstrumented(hooks: bool) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !cfg!(tokio_unstable) && hooks {
        diag::warn_once(
            &WARNED,
            "this program was built without `--cfg tokio_unstable`: taskscope sees its \
             runtime workers (a worker blocked or computing in one poll past the stall \
             threshold, with its stack; the tasks still alive at shutdown, as a count), not its tasks. Build with \
             RUSTFLAGS=\"--cfg tokio_unstable\" to see every task with its spawn location",
        );
    } else if !cfg!(tokio_unstable) {
        diag::warn_once(
            &WARNED,
            "this program was built without `--cfg tokio_unstable`, so tokio emits no task \
             instrumentation and taskscope will see no tasks. Build with \
             RUSTFLAGS=\"--cfg tokio_unstable\" or add to .cargo/config.toml:\n  \
             [build]\n  rustflags = [\"--cfg\", \"tokio_unstable\"]",
        );
    }
}
