//! The taskscope probe: finds the polls that stall a tokio app's threads and the tasks it
//! leaks, and streams what it sees to `taskscope` over gRPC and into recordings.
//!
//! # Instrument an app
//!
//! ```no_run
//! #[taskscope::main] // in place of #[tokio::main]; takes the same arguments
//! async fn main() {
//!     // ...
//! }
//! ```
//!
//! installs the probe before the runtime starts and observes tasks through tokio's runtime
//! hooks (the cheap route; [`hooks`] explains what it cannot see). A runtime built by hand
//! takes the same hooks with [`hooks::install`], and runs its body watched with
//! [`block_on`]. Alternatively, keep
//! `#[tokio::main]` and call [`init()`] first thing in `main`: tokio's tracing spans, every
//! runtime of the process, task names and aborts, at two to three times the cost per poll. Either
//! way, build with tokio's instrumentation on (`.cargo/config.toml`):
//!
//! ```toml
//! [build]
//! rustflags = ["--cfg", "tokio_unstable"]
//! ```
//!
//! Then `taskscope attach` shows it live (the probe serves on `127.0.0.1:6670`), or
//! `taskscope check -- cargo run` judges a run in CI.
//!
//! # Settings
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `TASKSCOPE_BIND` | `127.0.0.1:6670` | gRPC address, `unix:/path`, or `off` |
//! | `TASKSCOPE_RECORD` | unset | record to this file, or into this directory as `<program>-<pid>.tsrec` |
//! | `TASKSCOPE_STALL_THRESHOLD` | `100ms` | a poll longer than this is a stall |
//! | `TASKSCOPE_PUBLISH_INTERVAL` | `100ms` | how often changes are published |
//! | `TASKSCOPE_WAKERS` | `off` | track wakers (needed for lost-waker detection; costly; tracing route only), `auto` where the route allows |
//! | `TASKSCOPE_HOLDERS` | `on` | track who holds tokio's locks and permits (deadlocks; tracing route only); `off` saves about 2–3 µs of CPU per acquire |
//! | `TASKSCOPE_RETENTION` | `60s` | how long ended tasks stay visible |
//! | `TASKSCOPE_FOLD` | `on` | count short-lived tasks by spawn site in the updates, past the first 64 of a site per update; `off` sends every task |
//! | `TASKSCOPE_STACKS` | `on` | capture the stack of a stalled thread |
//! | `TASKSCOPE_FLIGHT` | `8MiB` | the flight recorder's memory (each thread's ring of polls, spawns, ends and wakes; a window around every stall), or `off` |
//! | `TASKSCOPE_FLIGHT_SPAN` | `2s` | how far before a stall its flight-recorder window starts |
//! | `TASKSCOPE_CONSOLE_BIND` | `off` | also serve tokio-console's protocol here (feature `console`; costly, see `docs/interop.md`) |
//! | `TASKSCOPE_ROUTE` | `hooks` | `tracing` keeps a `#[taskscope::main]` program on tokio's tracing spans |
//! | `TASKSCOPE_TOKEN` | random, in a 0600 file | the token TCP clients must present; `off` for none on loopback (`docs/security.md`) |
//! | `TASKSCOPE_ALLOW_REMOTE` | `off` | allow an address beyond loopback |
//! | `TASKSCOPE_MAX_WATCHERS` | `16` | clients streaming at once |
//! | `TASKSCOPE_MAX_CONNECTIONS` | `32` | connections at once |
//! | `TASKSCOPE_DUMP_WHEN_IDLE` | `off` | on the `init()` route, an await-chain dump whenever tasks have been idle this long, waker tracking or not (`taskscope check` sets `200ms`; `docs/guide.md`) |
//! | `TASKSCOPE_METRICS_BIND` | `off` | serve Prometheus metrics at `GET /metrics` here (`docs/monitoring.md`) |
//! | `TASKSCOPE_METRICS_MAX_SITES` | `50` | spawn sites with metric series of their own |
//! | `TASKSCOPE_OTLP_ENDPOINT` | `off` | send stalls as OTLP log records here (feature `otlp`; `docs/monitoring.md`) |
//! | `TASKSCOPE_TLS_CERT`, `TASKSCOPE_TLS_KEY` | unset | serve gRPC over TLS with these PEM files (feature `tls`; `docs/security.md`) |
//!
//! The same settings exist on [`Builder`]. The macros install no tracing subscriber, so the
//! app's own logging set-up works unchanged. An app on `#[tokio::main]` that builds its own
//! tracing subscriber adds [`layer()`] to it ([`Builder::build`] for settings in code).
//!
//! # What it costs, and what it never does
//!
//! A poll updates a few atomics in its own task's state; spawns go through the spawning
//! thread's own list; everything else (tables, encoding, gRPC, file writes) happens on the probe's own
//! threads. The probe never blocks an app thread, never makes the app wait for a client or
//! a disk, and counts (and reports) whatever it had to drop.

// The probe's layers, bottom up: each imports only from the layers listed before it
// (`docs/architecture.md` draws them).
mod base;

mod tasks;

mod detect;

mod observe;

mod aggregate;

mod export;

mod serve;

mod setup;

pub use observe::join::{Joined, join};
pub use setup::builder::{Builder, init, layer};
pub use setup::hooks;
pub use setup::hooks::block_on;
pub use setup::probe::{InitError, Probe};
pub use taskscope_macros::{main, test};

/// What the `#[taskscope::main]` and `#[taskscope::test]` expansions refer to.
#[doc(hidden)]
pub mod __private {
    pub use crate::setup::hooks::{Body, body};
    pub use crate::setup::shutdown::before_shutdown;
    pub use crate::tasks::runtimes::{Registration, register as register_runtime};
    pub use tokio;

    /// Starts the probe for a runtime that taskscope builds (hooks route unless turned
    /// down); never fails the app. A test serves nothing unless `TASKSCOPE_BIND` says
    /// where: a suite's tests run side by side, and each would fight for the same port
    /// (and print about it) for a server nobody attaches to; `taskscope check` records.
    pub fn init_for_runtime(is_test: bool) {
        crate::setup::shutdown::IS_TEST.with(|t| t.set(is_test));
        let mut builder = crate::Builder::from_env();
        if is_test && std::env::var_os(crate::base::config::env::BIND).is_none() {
            builder = builder.bind("off");
        }
        if let Err(e) = builder.init_with_hooks() {
            static WARNED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            crate::base::diag::warn_once(&WARNED, &e.to_string());
        }
    }
}
pub use base::config::Bind;
pub use observe::layer::{ProbeFilter, ProbeLayer, TaskLayer};
