//! The probe's own messages to the person running the app.
//!
//! They go straight to stderr, not through `tracing`: the probe is itself a tracing layer,
//! and logging from inside it would feed back into it (or be filtered away by the app's
//! `RUST_LOG`, hiding exactly the warnings that explain an empty dashboard).

use std::sync::atomic::{AtomicBool, Ordering};

/// Prints a warning.
pub(crate) fn warn(message: &str) {
    eprintln!("taskscope: warning: {message}");
}

/// Prints a warning the first time `flag` is seen unset.
pub(crate) fn warn_once(flag: &AtomicBool, message: &str) {
    if !flag.swap(true, Ordering::Relaxed) {
        warn(message);
    }
}
