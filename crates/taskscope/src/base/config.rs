//! The probe's settings: defaults, the `TASKSCOPE_*` environment, and their validation.
//!
//! A bad value must never stop the app being debugged: it is reported once on stderr,
//! naming the variable and the default used instead, and the probe carries on.

use std::path::PathBuf;
use std::time::Duration;

/// Where the probe serves its gRPC API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    /// A TCP address such as `127.0.0.1:6670`.
    Tcp(std::net::SocketAddr),
    /// A Unix domain socket path.
    Unix(PathBuf),
    /// No server (e.g. recording only).
    Off,
}

impl Bind {
    /// The default address, `127.0.0.1:6670`.
    pub const DEFAULT: &'static str = "127.0.0.1:6670";

    /// Parses `host:port`, `unix:/path` or `off`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("none") {
            return Ok(Bind::Off);
        }
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("`unix:` needs a socket path, e.g. unix:/tmp/app.sock".into());
            }
            return Ok(Bind::Unix(PathBuf::from(path)));
        }
        let text = text.strip_prefix("http://").unwrap_or(text);
        text.parse().map(Bind::Tcp).map_err(|_| {
            format!("`{text}` is not `host:port`, `unix:/path` or `off` (e.g. 127.0.0.1:6670)")
        })
    }
}

impl std::fmt::Display for Bind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bind::Tcp(addr) => write!(f, "{addr}"),
            Bind::Unix(path) => write!(f, "unix:{}", path.display()),
            Bind::Off => f.write_str("off"),
        }
    }
}

/// Every setting of the probe.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) bind: Bind,
    /// A file, or a directory to create `<program>-<pid>.tsrec` in.
    pub(crate) record: Option<PathBuf>,
    pub(crate) stall_threshold: Duration,
    pub(crate) publish_interval: Duration,
    /// Whether to track wakers; see [`Wakers`].
    pub(crate) wakers: Wakers,
    /// Whether to track who holds tokio's locks and permits; see [`Holders`].
    pub(crate) holders: Holders,
    /// How long ended tasks stay in the probe's state for clients to see.
    pub(crate) retention: Duration,
    /// At most this many ended tasks are retained, whatever `retention` says.
    pub(crate) max_retained: usize,
    /// Count short-lived tasks by spawn site in the updates, beyond the first few of each
    /// site per update, instead of sending each (`aggregate/folding.rs`).
    pub(crate) fold: bool,
    /// Capture the stalled thread's stack.
    pub(crate) capture_stacks: bool,
    /// Install a fmt layer for the app's own logs (`init()` only).
    pub(crate) log_to_stderr: bool,
    /// Where to also serve tokio-console's protocol (feature `console`); off by default.
    pub(crate) console_bind: Bind,
    /// How runtimes that taskscope builds are observed.
    pub(crate) route: Route,
    /// Where `init()` was called, when from inside a future tokio was already running.
    pub(crate) unobserved_body: Option<String>,
    /// The limits that keep clients from making the app spend (see `docs/security.md`).
    pub(crate) limits: Limits,
    /// Who may call the gRPC API over TCP.
    pub(crate) token: TokenSetting,
    /// Serving on an address other than loopback was asked for explicitly.
    pub(crate) allow_remote: bool,
    /// Dump the runtime `taskscope::init()` was called in whenever tasks have been idle
    /// this long (set by `taskscope check`: that runtime's end cannot be waited for).
    pub(crate) dump_when_idle: Option<Duration>,
    /// The Prometheus endpoint (`metrics/`); off by default.
    pub(crate) metrics: MetricsSetting,
    /// Where stalls are exported as OTLP log records (feature `otlp`); none by default.
    pub(crate) otlp_endpoint: Option<String>,
    /// The server's TLS certificate and key (`tls.rs`); none: plain text.
    pub(crate) tls: TlsFiles,
    /// The flight recorder's memory; `None`: off, and no thread records events.
    pub(crate) flight: Option<crate::base::flight_budget::FlightBudget>,
    /// How far before a stall its flight-recorder window starts.
    pub(crate) flight_span: Duration,
}

impl Config {
    /// Whether idle dumps are taken: when asked for, waker tracking or not. The wakers a
    /// dump clones count like the app's until the wakes that consume them
    /// (`tasks/lifecycle.rs`, `waker_op`), so a dump leaves waker counts, and lost-waker
    /// verdicts, as they were.
    pub(crate) fn dumps_when_idle(&self) -> bool {
        self.dump_when_idle.is_some()
    }
}

/// `TASKSCOPE_METRICS_BIND` and `TASKSCOPE_METRICS_MAX_SITES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetricsSetting {
    /// Where `GET /metrics` is served.
    pub(crate) bind: Bind,
    /// Spawn sites with series of their own; the rest are summed under `site="other"`.
    pub(crate) max_sites: usize,
}

impl MetricsSetting {
    pub(crate) const DEFAULT: MetricsSetting = MetricsSetting {
        bind: Bind::Off,
        max_sites: 50,
    };
}

/// `TASKSCOPE_WAKERS`: waker tracking, which only tokio's tracing spans can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wakers {
    Off,
    /// Asked for: on the hooks route, which cannot give it, a warning says so.
    On,
    /// Wherever the route allows, silently off elsewhere: what `taskscope check` asks for,
    /// so that judging a program never adds a line to its output.
    Auto,
}

/// `TASKSCOPE_HOLDERS`: who holds each tokio `Mutex`, `RwLock` and `Semaphore` and who
/// waits on it (the tracing route's wait-for graph). It costs about 2 µs per acquire, so
/// an app that takes locks in a hot loop may turn it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holders {
    On,
    /// Turned off, by what (shown to the user: what to undo to see holders again).
    Off(&'static str),
}

impl Holders {
    /// What turned tracking off through the environment.
    pub(crate) const OFF_BY_ENV: &'static str = "TASKSCOPE_HOLDERS=off";
    /// What turned tracking off through the builder.
    pub(crate) const OFF_BY_BUILDER: &'static str = "Builder::holder_tracking(false)";

    /// `on` or `off` (or any other switch spelling).
    fn parse(text: &str) -> Result<Self, String> {
        parse_switch(text).map(|on| {
            if on {
                Holders::On
            } else {
                Holders::Off(Self::OFF_BY_ENV)
            }
        })
    }
}

/// What clients may make the probe hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Concurrent `Watch` streams; one more is refused with `RESOURCE_EXHAUSTED`.
    pub(crate) max_watchers: usize,
    /// Concurrent connections; one more takes the place of the oldest that has made no
    /// call yet, or is closed as soon as it is accepted when every connection has.
    pub(crate) max_connections: usize,
}

impl Limits {
    pub(crate) const DEFAULT: Limits = Limits {
        max_watchers: 16,
        max_connections: 32,
    };
}

/// The token TCP clients must present.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum TokenSetting {
    /// A random one, written to the token file (the default).
    Generate,
    /// `TASKSCOPE_TOKEN`.
    Fixed(String),
    /// `TASKSCOPE_TOKEN=off`: none, on loopback only.
    Off,
}

impl std::fmt::Debug for TokenSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself: configs end up in logs.
        f.write_str(match self {
            Self::Generate => "Generate",
            Self::Fixed(_) => "Fixed(..)",
            Self::Off => "Off",
        })
    }
}

impl TokenSetting {
    /// Parses `TASKSCOPE_TOKEN`: a token, or `off`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        match taskscope_api::token::problem(text) {
            Some(problem) => Err(problem.into()),
            None => Ok(Self::Fixed(text.to_owned())),
        }
    }
}

/// The two ways into tokio. Only runtimes built through taskscope (`#[taskscope::main]`,
/// `#[taskscope::test]`, [`crate::hooks::install`]) can take the hooks; a runtime built
/// by `#[tokio::main]` is always seen through tracing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// tokio's task hooks: the cheap route (see `hooks.rs`).
    Hooks,
    /// tokio's `runtime.spawn` spans: sees task names, blocking tasks, `LocalSet`s,
    /// wakers and aborts, at several times the cost per poll.
    Tracing,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: Bind::Tcp(Bind::DEFAULT.parse().expect("valid default")),
            record: None,
            stall_threshold: Duration::from_millis(100),
            publish_interval: Duration::from_millis(100),
            wakers: Wakers::Off,
            holders: Holders::On,
            retention: Duration::from_secs(60),
            max_retained: 10_000,
            fold: true,
            capture_stacks: true,
            log_to_stderr: true,
            console_bind: Bind::Off,
            route: Route::Hooks,
            unobserved_body: None,
            limits: Limits::DEFAULT,
            token: TokenSetting::Generate,
            allow_remote: false,
            dump_when_idle: None,
            metrics: MetricsSetting::DEFAULT,
            otlp_endpoint: None,
            tls: TlsFiles::default(),
            flight: Some(crate::base::flight_budget::FlightBudget::DEFAULT),
            flight_span: Duration::from_secs(2),
        }
    }
}

impl Config {
    /// Whether a runtime built through taskscope takes the hooks route: asked for. Without
    /// `--cfg tokio_unstable` tokio has no task hooks, but its thread hooks still tell
    /// when each worker parks, which is how the probe sees stalls there; the tracing route
    /// would see nothing at all in such a build. Waker tracking does not switch routes:
    /// the tracing route installs a global tracing subscriber, which would break every
    /// app that installs its own.
    pub(crate) fn uses_hooks(&self) -> bool {
        self.route == Route::Hooks
    }

    /// Whether wakers are tracked (the hooks route turns the setting off when it starts).
    pub(crate) fn waker_tracking(&self) -> bool {
        self.wakers != Wakers::Off
    }

    /// Whether holders of locks and permits are tracked (on the tracing route only).
    pub(crate) fn holder_tracking(&self) -> bool {
        self.holders == Holders::On
    }
}

/// A file's path; not empty.
fn parse_path(value: &str) -> Result<PathBuf, String> {
    if value.trim().is_empty() {
        Err("an empty path".into())
    } else {
        Ok(PathBuf::from(value))
    }
}

/// Environment variables the probe reads.
pub(crate) mod env {
    pub(crate) const BIND: &str = "TASKSCOPE_BIND";
    pub(crate) const RECORD: &str = "TASKSCOPE_RECORD";
    pub(crate) const FLIGHT: &str = "TASKSCOPE_FLIGHT";
    pub(crate) const FLIGHT_SPAN: &str = "TASKSCOPE_FLIGHT_SPAN";
    pub(crate) const STALL_THRESHOLD: &str = "TASKSCOPE_STALL_THRESHOLD";
    pub(crate) const PUBLISH_INTERVAL: &str = "TASKSCOPE_PUBLISH_INTERVAL";
    pub(crate) const WAKERS: &str = "TASKSCOPE_WAKERS";
    pub(crate) const HOLDERS: &str = "TASKSCOPE_HOLDERS";
    pub(crate) const RETENTION: &str = "TASKSCOPE_RETENTION";
    pub(crate) const FOLD: &str = "TASKSCOPE_FOLD";
    pub(crate) const STACKS: &str = "TASKSCOPE_STACKS";
    pub(crate) const CONSOLE_BIND: &str = "TASKSCOPE_CONSOLE_BIND";
    pub(crate) const ROUTE: &str = "TASKSCOPE_ROUTE";
    pub(crate) const TOKEN: &str = "TASKSCOPE_TOKEN";
    pub(crate) const ALLOW_REMOTE: &str = "TASKSCOPE_ALLOW_REMOTE";
    pub(crate) const MAX_WATCHERS: &str = "TASKSCOPE_MAX_WATCHERS";
    pub(crate) const MAX_CONNECTIONS: &str = "TASKSCOPE_MAX_CONNECTIONS";
    pub(crate) const DUMP_WHEN_IDLE: &str = "TASKSCOPE_DUMP_WHEN_IDLE";
    pub(crate) const METRICS_BIND: &str = "TASKSCOPE_METRICS_BIND";
    pub(crate) const METRICS_MAX_SITES: &str = "TASKSCOPE_METRICS_MAX_SITES";
    pub(crate) const OTLP_ENDPOINT: &str = "TASKSCOPE_OTLP_ENDPOINT";
    pub(crate) const TLS_CERT: &str = "TASKSCOPE_TLS_CERT";
    pub(crate) const TLS_KEY: &str = "TASKSCOPE_TLS_KEY";
}

impl Config {
    /// Applies the `TASKSCOPE_*` variables that are set, warning about invalid ones.
    pub(crate) fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        let mut apply = |name: &str, apply: &mut dyn FnMut(&str) -> Result<(), String>| {
            if let Some(value) = lookup(name)
                && let Err(problem) = apply(&value)
            {
                // A secret is not repeated on stderr, even a refused one.
                let shown = if name == env::TOKEN {
                    "(hidden)".into()
                } else {
                    format!("{value:?}")
                };
                crate::base::diag::warn(&format!(
                    "{name}={shown} is invalid ({problem}); using the default"
                ));
            }
        };
        self.apply_observing(&mut apply);
        self.apply_serving(&mut apply);
    }

    /// The variables for what the probe watches and records.
    fn apply_observing(&mut self, apply: &mut Apply<'_>) {
        apply(env::RECORD, &mut |v| {
            parse_path(v).map(|p| self.record = Some(p))
        });
        apply(env::STALL_THRESHOLD, &mut |v| {
            parse_threshold(v).map(|d| self.stall_threshold = d)
        });
        apply(env::PUBLISH_INTERVAL, &mut |v| {
            parse_publish_interval(v).map(|d| self.publish_interval = d)
        });
        apply(env::WAKERS, &mut |v| {
            Wakers::parse(v).map(|w| self.wakers = w)
        });
        apply(env::HOLDERS, &mut |v| {
            Holders::parse(v).map(|h| self.holders = h)
        });
        apply(env::RETENTION, &mut |v| {
            parse_duration(v).map(|d| self.retention = d)
        });
        apply(env::FOLD, &mut |v| parse_switch(v).map(|on| self.fold = on));
        apply(env::STACKS, &mut |v| {
            parse_switch(v).map(|on| self.capture_stacks = on)
        });
        apply(env::ROUTE, &mut |v| Route::parse(v).map(|r| self.route = r));
        apply(env::FLIGHT, &mut |v| {
            crate::base::flight_budget::FlightBudget::parse(v).map(|f| self.flight = f)
        });
        apply(env::FLIGHT_SPAN, &mut |v| {
            parse_duration(v).map(|d| self.flight_span = d)
        });
        apply(env::DUMP_WHEN_IDLE, &mut |v| {
            parse_idle_dump(v).map(|d| self.dump_when_idle = d)
        });
    }

    /// The variables for where, and to whom, the probe serves what it sees.
    fn apply_serving(&mut self, apply: &mut Apply<'_>) {
        apply(env::BIND, &mut |v| Bind::parse(v).map(|b| self.bind = b));
        apply(env::CONSOLE_BIND, &mut |v| {
            Bind::parse(v).map(|b| self.console_bind = b)
        });
        apply(env::TOKEN, &mut |v| {
            TokenSetting::parse(v).map(|t| self.token = t)
        });
        apply(env::ALLOW_REMOTE, &mut |v| {
            parse_switch(v).map(|on| self.allow_remote = on)
        });
        apply(env::MAX_WATCHERS, &mut |v| {
            parse_count(v).map(|n| self.limits.max_watchers = n)
        });
        apply(env::MAX_CONNECTIONS, &mut |v| {
            parse_count(v).map(|n| self.limits.max_connections = n)
        });
        apply(env::METRICS_BIND, &mut |v| {
            Bind::parse(v).map(|b| self.metrics.bind = b)
        });
        apply(env::METRICS_MAX_SITES, &mut |v| {
            parse_count(v).map(|n| self.metrics.max_sites = n)
        });
        apply(env::OTLP_ENDPOINT, &mut |v| {
            parse_otlp_endpoint(v).map(|e| self.otlp_endpoint = e)
        });
        apply(env::TLS_CERT, &mut |v| {
            parse_path(v).map(|path| self.tls.cert = Some(path))
        });
        apply(env::TLS_KEY, &mut |v| {
            parse_path(v).map(|path| self.tls.key = Some(path))
        });
    }
}

/// Applies one variable's value with the parser given, when the variable is set.
type Apply<'a> = dyn FnMut(&str, &mut dyn FnMut(&str) -> Result<(), String>) + 'a;

impl Wakers {
    /// `on`, `off` (or any other switch spelling), or `auto`.
    fn parse(text: &str) -> Result<Self, String> {
        if text.trim().eq_ignore_ascii_case("auto") {
            return Ok(Wakers::Auto);
        }
        match parse_switch(text) {
            Ok(true) => Ok(Wakers::On),
            Ok(false) => Ok(Wakers::Off),
            Err(_) => Err("expected `on`, `off` or `auto`".into()),
        }
    }
}

impl Route {
    /// `hooks` or `tracing`, in any case.
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "hooks" => Ok(Route::Hooks),
            "tracing" => Ok(Route::Tracing),
            _ => Err("expected `hooks` or `tracing`".into()),
        }
    }
}

/// A stall threshold: any duration above zero.
fn parse_threshold(text: &str) -> Result<Duration, String> {
    let threshold = parse_duration(text)?;
    if threshold.is_zero() {
        return Err("the threshold must be above zero".into());
    }
    Ok(threshold)
}

/// A publish interval: 1 ms at least.
fn parse_publish_interval(text: &str) -> Result<Duration, String> {
    let interval = parse_duration(text)?;
    if interval < Duration::from_millis(1) {
        return Err("the interval must be at least 1ms".into());
    }
    Ok(interval)
}

/// `off`, or how long tasks must have been idle for a dump: 10 ms at least.
fn parse_idle_dump(text: &str) -> Result<Option<Duration>, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let idle = parse_duration(text)?;
    if idle < Duration::from_millis(10) {
        return Err("expected `off` or a duration of at least 10ms".into());
    }
    Ok(Some(idle))
}

/// Parses an OTLP/gRPC endpoint: `http://host:port`, or `off`.
pub(crate) fn parse_otlp_endpoint(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match text.strip_prefix("http://") {
        Some(rest) if !rest.is_empty() => Ok(Some(text.to_owned())),
        _ => Err("expected http://host:port (OTLP over gRPC, no TLS), or off".into()),
    }
}

/// Parses a limit: a whole number from 1 to 10,000.
fn parse_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err("expected a whole number from 1 to 10000".into()),
    }
}

/// Parses `on|off|true|false|1|0`.
fn parse_switch(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err("expected `on` or `off`".into()),
    }
}

pub(crate) use taskscope_api::duration::parse as parse_duration;

/// The TLS identity's two PEM files, as configured (`serve/tls.rs` loads and checks them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) cert: Option<std::path::PathBuf>,
    pub(crate) key: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_from(vars: &[(&str, &str)]) -> Config {
        let mut config = Config::default();
        config.apply_env(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        });
        config
    }

    #[test]
    fn bind_accepts_tcp_unix_and_off() {
        assert_eq!(Bind::parse("off"), Ok(Bind::Off));
        assert_eq!(
            Bind::parse("unix:/tmp/x.sock"),
            Ok(Bind::Unix("/tmp/x.sock".into()))
        );
        assert_eq!(
            Bind::parse("http://127.0.0.1:7000"),
            Ok(Bind::Tcp("127.0.0.1:7000".parse().unwrap()))
        );
        assert!(Bind::parse("localhost").is_err());
    }

    #[test]
    fn valid_environment_values_are_applied() {
        let config = config_from(&[
            (env::BIND, "off"),
            (env::STALL_THRESHOLD, "250ms"),
            (env::PUBLISH_INTERVAL, "20ms"),
            (env::WAKERS, "on"),
            (env::RECORD, "/tmp/r.tsrec"),
            (env::CONSOLE_BIND, "127.0.0.1:6669"),
            (env::ROUTE, "tracing"),
            (env::TOKEN, "0123456789abcdef0123"),
            (env::ALLOW_REMOTE, "1"),
            (env::MAX_WATCHERS, "4"),
            (env::MAX_CONNECTIONS, "8"),
        ]);
        assert_eq!(config.route, Route::Tracing);
        assert_eq!(
            config.token,
            TokenSetting::Fixed("0123456789abcdef0123".into())
        );
        assert!(config.allow_remote);
        assert_eq!(
            config.limits,
            Limits {
                max_watchers: 4,
                max_connections: 8
            }
        );
        assert_eq!(config.bind, Bind::Off);
        assert_eq!(config.stall_threshold, Duration::from_millis(250));
        assert_eq!(config.publish_interval, Duration::from_millis(20));
        assert_eq!(config.wakers, Wakers::On);
        assert_eq!(config.record, Some(PathBuf::from("/tmp/r.tsrec")));
        assert_eq!(
            config.console_bind,
            Bind::Tcp("127.0.0.1:6669".parse().unwrap())
        );
    }

    #[test]
    fn invalid_environment_values_keep_the_defaults() {
        let config = config_from(&[
            (env::BIND, "nowhere"),
            (env::STALL_THRESHOLD, "0ms"),
            (env::PUBLISH_INTERVAL, "soon"),
            (env::WAKERS, "maybe"),
            (env::CONSOLE_BIND, "6669"),
            (env::ROUTE, "spans"),
            (env::TOKEN, "short"),
            (env::ALLOW_REMOTE, "perhaps"),
            (env::MAX_WATCHERS, "0"),
            (env::MAX_CONNECTIONS, "lots"),
        ]);
        assert_eq!(config.route, Route::Hooks);
        assert_eq!(config.token, TokenSetting::Generate);
        assert!(!config.allow_remote);
        assert_eq!(config.limits, Limits::DEFAULT);
        let default = Config::default();
        assert_eq!(config.bind, default.bind);
        assert_eq!(config.stall_threshold, default.stall_threshold);
        assert_eq!(config.publish_interval, default.publish_interval);
        assert_eq!(config.wakers, default.wakers);
        assert_eq!(config.console_bind, Bind::Off);
    }

    #[test]
    fn holders_are_tracked_unless_the_environment_turns_them_off_and_says_so() {
        assert!(Config::default().holder_tracking());
        let off = config_from(&[(env::HOLDERS, "off")]);
        assert!(!off.holder_tracking());
        assert_eq!(off.holders, Holders::Off("TASKSCOPE_HOLDERS=off"));
        assert!(config_from(&[(env::HOLDERS, "on")]).holder_tracking());
        assert!(config_from(&[(env::HOLDERS, "sometimes")]).holder_tracking());
    }
}

#[cfg(test)]
mod metrics_tests {
    use super::*;

    fn metrics_from(vars: &[(&str, &str)]) -> MetricsSetting {
        let mut config = Config::default();
        config.apply_env(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        });
        config.metrics
    }

    #[test]
    fn the_metrics_endpoint_is_off_unless_asked_for() {
        assert_eq!(metrics_from(&[]), MetricsSetting::DEFAULT);
        assert_eq!(MetricsSetting::DEFAULT.bind, Bind::Off);
        let metrics = metrics_from(&[
            (env::METRICS_BIND, "127.0.0.1:9464"),
            (env::METRICS_MAX_SITES, "7"),
        ]);
        assert_eq!(metrics.bind, Bind::Tcp("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(metrics.max_sites, 7);
    }

    #[test]
    fn an_otlp_endpoint_is_an_http_address_or_off() {
        assert_eq!(
            parse_otlp_endpoint(" http://127.0.0.1:4317 "),
            Ok(Some("http://127.0.0.1:4317".into()))
        );
        assert_eq!(parse_otlp_endpoint("off"), Ok(None));
        assert!(parse_otlp_endpoint("https://collector:4317").is_err());
        assert!(parse_otlp_endpoint("127.0.0.1:4317").is_err());
    }

    #[test]
    fn invalid_metrics_settings_keep_the_defaults() {
        let metrics = metrics_from(&[(env::METRICS_BIND, "9464"), (env::METRICS_MAX_SITES, "0")]);
        assert_eq!(metrics, MetricsSetting::DEFAULT);
    }
}
