//! The instrumentation set-ups being compared, and how a child process installs each one.
//!
//! A mode is configured the way an app would configure it: the taskscope modes do what
//! `#[taskscope::main]` does (`Builder::from_env().init_with_hooks()` and the runtime
//! hooks) or what `taskscope::init()` does, with the `TASKSCOPE_*` variables the parent
//! sets, and `console` calls `console_subscriber::init()` with `TOKIO_CONSOLE_BIND`.
//! Nothing is tuned for the benchmark.

use std::fmt;
use std::str::FromStr;

/// One way of running the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Mode {
    /// Plain tokio (same `--cfg tokio_unstable` build), no subscriber at all.
    None,
    /// Plain tokio as an app without the probe builds it: no `tracing` or `taskdump`
    /// feature and no `--cfg tokio_unstable`. Run from a separate build of this harness
    /// ([`crate::builds::PLAIN`]): the baseline every cost target is measured against;
    /// against `none`, what the probe's tokio features and cfg cost an app before the
    /// probe does anything.
    Plain,
    /// The probe as `#[taskscope::main]` sets it up (the hooks route), default settings,
    /// its gRPC server up, nobody watching.
    Taskscope,
    /// As `Taskscope`, in a `#[taskscope::main]` app that builds the probe with
    /// `default-features = false`: the hooks route on tokio without its `tracing` feature.
    /// Run from a separate build of this harness ([`crate::builds::LEAN`]).
    TaskscopeLean,
    /// The probe as `taskscope::init()` sets it up in a `#[tokio::main]` app: the tracing
    /// route.
    TaskscopeInit,
    /// As `TaskscopeInit`, with holder tracking off (`TASKSCOPE_HOLDERS=off`): against
    /// `TaskscopeInit`, what tracking who holds each lock and permit costs.
    TaskscopeNoHolders,
    /// As `Taskscope`, with a client consuming the `Watch` stream for the whole run.
    TaskscopeWatch,
    /// As `TaskscopeWatch`, with every task sent one by one (`TASKSCOPE_FOLD=off`):
    /// against `TaskscopeWatch`, what counting short-lived tasks by site saves.
    TaskscopeWatchUnfolded,
    /// As `Taskscope`, recording to a temporary file.
    TaskscopeRecord,
    /// As `Taskscope`, with the flight recorder off (`TASKSCOPE_FLIGHT=off`): against
    /// `Taskscope`, what the recorder costs end to end.
    TaskscopeNoFlight,
    /// As `Taskscope`, with waker tracking on (what `taskscope check` pays for lost wakers;
    /// waker tracking takes the tracing route).
    TaskscopeWakers,
    /// console-subscriber 0.5 as its `init()` sets it up, serving on its own port.
    Console,
    /// The probe's layer alone on a bare registry (`Builder::build`), without the log
    /// output layer `init()` adds: separates the probe's own cost from that layer's.
    TaskscopeLayer,
    /// As `Taskscope`, with the metrics endpoint on (`TASKSCOPE_METRICS_BIND`) and
    /// scraped once a second for the whole run.
    TaskscopeMetrics,
}

impl Mode {
    /// Every mode.
    pub(crate) const ALL: [Mode; 14] = [
        Mode::None,
        Mode::Plain,
        Mode::Taskscope,
        Mode::TaskscopeLean,
        Mode::TaskscopeInit,
        Mode::TaskscopeNoHolders,
        Mode::TaskscopeWatch,
        Mode::TaskscopeWatchUnfolded,
        Mode::TaskscopeRecord,
        Mode::TaskscopeNoFlight,
        Mode::TaskscopeWakers,
        Mode::Console,
        Mode::TaskscopeLayer,
        Mode::TaskscopeMetrics,
    ];

    /// The modes run when `--modes` is not given.
    pub(crate) const DEFAULT: [Mode; 7] = [
        Mode::None,
        Mode::Taskscope,
        Mode::TaskscopeInit,
        Mode::TaskscopeWatch,
        Mode::TaskscopeRecord,
        Mode::TaskscopeWakers,
        Mode::Console,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Plain => "plain",
            Mode::Taskscope => "taskscope",
            Mode::TaskscopeLean => "taskscope-lean",
            Mode::TaskscopeInit => "taskscope-init",
            Mode::TaskscopeNoHolders => "taskscope-noholders",
            Mode::TaskscopeWatch => "taskscope+watch",
            Mode::TaskscopeWatchUnfolded => "taskscope+watch-unfolded",
            Mode::TaskscopeRecord => "taskscope+record",
            Mode::TaskscopeNoFlight => "taskscope-noflight",
            Mode::TaskscopeWakers => "taskscope+wakers",
            Mode::Console => "console",
            Mode::TaskscopeLayer => "taskscope-layer",
            Mode::TaskscopeMetrics => "taskscope+metrics",
        }
    }

    /// Whether the taskscope probe runs in this mode.
    pub(crate) fn is_taskscope(self) -> bool {
        matches!(
            self,
            Mode::Taskscope
                | Mode::TaskscopeLean
                | Mode::TaskscopeInit
                | Mode::TaskscopeNoHolders
                | Mode::TaskscopeWatch
                | Mode::TaskscopeWatchUnfolded
                | Mode::TaskscopeRecord
                | Mode::TaskscopeNoFlight
                | Mode::TaskscopeWakers
                | Mode::TaskscopeLayer
                | Mode::TaskscopeMetrics
        )
    }

    /// Whether this mode sets the probe up as `#[taskscope::main]` does.
    #[cfg(feature = "probe-hooks")]
    fn like_taskscope_main(self) -> bool {
        matches!(
            self,
            Mode::Taskscope
                | Mode::TaskscopeLean
                | Mode::TaskscopeWatch
                | Mode::TaskscopeWatchUnfolded
                | Mode::TaskscopeRecord
                | Mode::TaskscopeNoFlight
                | Mode::TaskscopeWakers
                | Mode::TaskscopeMetrics
        )
    }

    /// Adds what this mode needs to the runtime being built.
    pub(crate) fn configure_runtime(self, builder: &mut tokio::runtime::Builder) {
        #[cfg(feature = "probe-hooks")]
        if self.like_taskscope_main() {
            taskscope::hooks::install(builder);
        }
        #[cfg(not(feature = "probe-hooks"))]
        let _ = builder;
    }

    /// Installs this mode's tracing set-up in the current (child) process. Must run before
    /// the runtime is built, so that the runtime's own tasks are seen too.
    #[cfg(not(feature = "probe"))]
    pub(crate) fn install(self) -> anyhow::Result<()> {
        match self {
            Mode::None | Mode::Plain => Ok(()),
            #[cfg(feature = "probe-hooks")]
            _ if self.like_taskscope_main() && self != Mode::TaskscopeWakers => {
                taskscope::Builder::from_env()
                    .init_with_hooks()
                    .map(drop)
                    .map_err(|e| anyhow::anyhow!("cannot start the probe: {e}"))
            }
            other => anyhow::bail!(
                "this build of the harness has {} (built with --no-default-features); it \
                 cannot run mode `{other}`",
                if cfg!(feature = "probe-hooks") {
                    "the probe's hooks route only, tokio without its `tracing` feature"
                } else {
                    "no probe, for the `plain` mode"
                }
            ),
        }
    }

    /// Installs this mode's tracing set-up in the current (child) process. Must run before
    /// the runtime is built, so that the runtime's own tasks are seen too.
    #[cfg(feature = "probe")]
    pub(crate) fn install(self) -> anyhow::Result<()> {
        match self {
            Mode::None | Mode::Plain => Ok(()),
            Mode::TaskscopeLean => anyhow::bail!(
                "mode `{self}` runs from a build of its own ({}), not from this one",
                crate::builds::LEAN.command_text()
            ),
            Mode::Console => {
                console_subscriber::init();
                Ok(())
            }
            Mode::TaskscopeLayer => {
                use tracing_subscriber::layer::SubscriberExt;
                use tracing_subscriber::util::SubscriberInitExt;
                let (layer, _probe) = taskscope::Builder::from_env()
                    .build()
                    .map_err(|e| anyhow::anyhow!("cannot start the probe: {e}"))?;
                tracing_subscriber::registry()
                    .with(layer)
                    .try_init()
                    .map_err(|e| anyhow::anyhow!("cannot install the probe's layer: {e}"))
            }
            _ if self.like_taskscope_main() => taskscope::Builder::from_env()
                .init_with_hooks()
                .map(drop)
                .map_err(|e| anyhow::anyhow!("cannot start the probe: {e}")),
            _ => taskscope::Builder::from_env()
                .init()
                .map(drop)
                .map_err(|e| anyhow::anyhow!("cannot start the probe: {e}")),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Mode::ALL.iter().map(|m| m.name()).collect();
                format!("unknown mode `{text}`; choose from {}", names.join(", "))
            })
    }
}

impl serde::Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
