//! The workloads: what each one stresses, its sizes, and what it reports.
//!
//! Sizes follow the figures the targets are stated for; `--quick` shrinks them so that
//! the whole matrix runs in seconds (it proves the harness works and measures nothing).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One synthetic app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Workload {
    Spawn,
    Pingpong,
    Timers,
    Echo,
    Serve,
    Churn,
    Live,
    StallLatency,
    Locks,
}

impl Workload {
    pub(crate) const ALL: [Workload; 9] = [
        Workload::Spawn,
        Workload::Pingpong,
        Workload::Timers,
        Workload::Echo,
        Workload::Serve,
        Workload::Churn,
        Workload::Live,
        Workload::StallLatency,
        Workload::Locks,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::Spawn => "spawn",
            Workload::Pingpong => "pingpong",
            Workload::Timers => "timers",
            Workload::Echo => "echo",
            Workload::Serve => "serve",
            Workload::Churn => "churn",
            Workload::Live => "live",
            Workload::StallLatency => "stall-latency",
            Workload::Locks => "locks",
        }
    }

    /// What `size` counts, for the help and the table.
    pub(crate) fn unit(self) -> &'static str {
        match self {
            Workload::Spawn => "tasks",
            Workload::Pingpong => "messages",
            Workload::Timers => "tasks x 20 sleeps",
            Workload::Echo => "round trips",
            Workload::Serve => "tasks",
            Workload::Churn => "tasks",
            Workload::Live => "idle tasks",
            Workload::StallLatency => "stalls",
            Workload::Locks => "lock acquires",
        }
    }

    /// The size the targets are stated for.
    pub(crate) fn full_size(self) -> u64 {
        match self {
            Workload::Spawn => 200_000,
            Workload::Pingpong => 2_000_000,
            Workload::Timers => 10_000,
            Workload::Echo => 100_000,
            Workload::Serve => 5_000,
            Workload::Churn => 2_000_000,
            Workload::Live => 100_000,
            Workload::StallLatency => 100,
            Workload::Locks => 1_000_000,
        }
    }

    /// A size that runs in well under a second.
    pub(crate) fn quick_size(self) -> u64 {
        match self {
            Workload::Spawn => 2_000,
            Workload::Pingpong => 20_000,
            Workload::Timers => 200,
            Workload::Echo => 2_000,
            Workload::Serve => 200,
            Workload::Churn => 20_000,
            Workload::Live => 2_000,
            Workload::StallLatency => 3,
            Workload::Locks => 10_000,
        }
    }

    /// Whether the workload needs a client watching the probe (it measures what the
    /// client receives), so that it only makes sense in the taskscope modes.
    pub(crate) fn needs_probe(self) -> bool {
        self == Workload::StallLatency
    }
}

/// Parameters that are not a size: how long `serve` measures its steady state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) serve_window: Duration,
}

impl Timing {
    pub(crate) fn full() -> Self {
        Self {
            serve_window: Duration::from_secs(5),
        }
    }

    pub(crate) fn quick() -> Self {
        Self {
            serve_window: Duration::from_millis(500),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Workload::ALL.iter().map(|w| w.name()).collect();
                format!(
                    "unknown workload `{text}`; choose from {}",
                    names.join(", ")
                )
            })
    }
}

impl serde::Serialize for Workload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Workload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
