//! What taskscope's end-to-end suites (`tests/*.rs`) share, written once: finding and
//! building the real binaries ([`build`]), places in the examples' sources ([`source`]),
//! starting examples and talking to their probe ([`app`]), reading recordings
//! ([`recording`]), running `taskscope check` ([`check`]), driving a real terminal
//! ([`tmux`]), requiring the external programs some suites drive ([`tools`]),
//! misbehaving on purpose ([`hostile`]) and loading the machine ([`load`]).
//!
//! Timing: nothing here asserts how fast anything happens; every wait has a wide margin.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod app;
pub mod build;
pub mod check;
pub mod hostile;
pub mod load;
pub mod recording;
pub mod source;
pub mod tmux;
pub mod tools;
pub mod trace;

pub use app::{
    Client, Running, Served, TOKEN, command, connect, first_line_of, free_port, with_token,
};
pub use build::{cargo, example, taskscope};
pub use recording::{Folded, Task, run_recorded, single_recording};
pub use source::{Location, fault_location, location_of_line, marked_line};
pub use trace::read_trace;

/// How long to wait for something that should happen at once (a prompt, a socket, a
/// screen): wide, for a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The workspace's root directory: where `taskscope check` runs its commands from, so
/// that spawn locations are workspace-relative.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the workspace root exists")
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

/// Waits (for a minute at most) until `ready` holds; panics naming `what` otherwise.
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let limit = Duration::from_secs(60);
    if wait_for(limit, || ready().then_some(())).is_none() {
        panic!("{what} did not happen within {limit:?}");
    }
}
