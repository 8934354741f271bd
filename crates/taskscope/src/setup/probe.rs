//! The process's one probe: the [`Probe`] handle, and the one place the running probe is
//! kept.
//!
//! It is process-wide because the probe's callers carry no handle of their own: the
//! macros' generated code, [`crate::hooks::install`] on a runtime builder, `layer()` in a
//! subscriber built anywhere, and the `atexit` handler (which takes no argument) all find
//! it here. Two probes would each take a share of the same threads' tasks, so every way of
//! starting one goes through [`get_or_start`].

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::base::config::Route;
use crate::serve::command::Command;
use crate::tasks::shared::Shared;

/// Why the probe could not be installed. The app keeps running either way.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Another global tracing subscriber is installed.
    #[error(
        "a global tracing subscriber is already installed, so taskscope::init() cannot \
         install its own; add the probe's layer to yours instead: \
         `.with(taskscope::layer())`, or use #[taskscope::main], which needs no subscriber"
    )]
    SubscriberAlreadySet,
    /// The probe's threads could not be started.
    #[error("cannot start the probe's threads: {0}")]
    Threads(#[source] std::io::Error),
}

/// The process's probe. Dropping it does not stop the probe: it runs as long as the
/// process, unless [`Probe::shutdown`] stops it.
///
/// A process has one probe. Every way of starting one ([`crate::init`],
/// [`crate::Builder::init`], [`crate::Builder::init_with_hooks`], [`crate::Builder::build`],
/// [`crate::layer()`], the macros) returns the one already running, if any, and the
/// builder's ways say once on stderr when their own settings were therefore not used:
/// two probes would each take a share of the same threads' tasks.
#[derive(Clone)]
pub struct Probe {
    pub(crate) shared: Arc<Shared>,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) bind: Option<String>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("address", &self.bind)
            .field("stopped", &self.shared.is_stopped())
            .finish_non_exhaustive()
    }
}

impl Probe {
    /// Publishes everything pending now and waits (at most 2 s) until a recording has it.
    /// Called automatically when the process exits.
    pub fn flush(&self) {
        let (done, receiver) = std::sync::mpsc::channel();
        if self.commands.send(Command::FinalFlush(done)).is_ok() {
            let _ = receiver.recv_timeout(Duration::from_secs(2));
        }
    }

    /// The address the probe serves on (`host:port` or `unix:/path`), if any.
    pub fn address(&self) -> Option<&str> {
        self.bind.as_deref()
    }

    /// Stops the probe for good: publishes what is pending (a recording gets it, marked as
    /// the last update), closes its server and its clients' streams, and joins its
    /// threads (at most about 2 s, the flush's bound). Tasks spawned afterwards are not
    /// tracked; tasks already tracked cost their polls a few atomic updates still, as
    /// before. Calling it again does nothing.
    ///
    /// The process keeps its one probe: starting another afterwards returns this stopped
    /// one. Meant for hosts that must release the probe's address or threads before the
    /// process ends (a test harness, an embedding); an app never needs it.
    pub fn shutdown(&self) {
        if self.shared.is_stopped() {
            return;
        }
        self.flush();
        let _ = self.commands.send(Command::Stop);
        self.shared.stop();
    }
}

/// The running probe, once started. Never replaced: a probe stopped by
/// [`Probe::shutdown`] stays the process's probe.
static RUNNING: OnceLock<Probe> = OnceLock::new();

/// The probe running in this process, if any.
pub(crate) fn running() -> Option<&'static Probe> {
    RUNNING.get()
}

/// The running probe and whether it was running already, or the one `start` starts now.
/// One start at a time, so that threads starting the probe at once all get the same one.
pub(crate) fn get_or_start(
    start: impl FnOnce() -> Result<Probe, InitError>,
) -> Result<(&'static Probe, bool), InitError> {
    static STARTING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(probe) = RUNNING.get() {
        return Ok((probe, true));
    }
    let probe = start()?;
    Ok((RUNNING.get_or_init(|| probe), false))
}

/// The running probe's state when it takes tasks from tokio's runtime hooks.
pub(crate) fn on_hooks() -> Option<&'static Arc<Shared>> {
    running()
        .map(|probe| &probe.shared)
        .filter(|shared| shared.config.route == Route::Hooks)
}
