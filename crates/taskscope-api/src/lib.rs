//! taskscope's contract between a probe and its clients.
//!
//! * [`v1`]: the `taskscope.v1` gRPC types and service stubs, generated from
//!   `proto/taskscope/v1/probe.proto` in this package (committed;
//!   `tests/generated_is_fresh.rs` fails when the committed copy no longer matches the
//!   `.proto`).
//! * [`recording`]: the recording file format (the same `Update` stream, on disk).
//! * [`flight`]: the flight recorder's windows read back as events.
//! * [`stall`]: which stack sample stands for a stall.
//! * [`duration`]: durations as `100ms`, `2s`, shared by the probe's settings and the CLI.
//! * [`histogram`]: the poll-duration buckets of `TaskStats.poll_histogram`.
//! * [`token`]: where a probe leaves its access token and how clients present it.

pub mod duration;
pub mod flight;
pub mod histogram;
pub mod recording;
mod serde_enum;
pub mod stall;
pub mod token;

/// Generated `taskscope.v1` types, client and server.
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    rustdoc::all
)]
pub mod v1 {
    include!("generated/taskscope.v1.rs");
}
