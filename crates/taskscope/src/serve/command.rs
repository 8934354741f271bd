//! What the probe's thread is asked to do: by the gRPC server for its clients, by the
//! probe's own tasks when a dump is ready, and by the app's side (a flush, a stop, a
//! runtime's dump at its shutdown). Apart from the runner that answers, so that the server
//! and the runner each depend on it rather than on each other.

use taskscope_api::v1;
use tokio::sync::oneshot;
use tonic::Status;

use crate::aggregate::watchers::Feed;

/// Requests to the probe's thread.
pub(crate) enum Command {
    /// A feed, or why not (refused beyond the limit on watchers).
    Watch(oneshot::Sender<Result<Feed, Status>>),
    Snapshot {
        page: u64,
        reply: oneshot::Sender<Result<v1::SnapshotPage, Status>>,
    },
    /// Where every live task is waiting (`Dump`), or why not.
    Dump(oneshot::Sender<Result<v1::Dump, Status>>),
    /// The flight recorder's last `span_ns` (0: the configured span) as a window
    /// (`Flight`), or why not.
    Flight {
        span_ns: u64,
        reply: oneshot::Sender<Result<v1::FlightWindow, Status>>,
    },
    /// A dump a runtime took as it shut down: symbolize it, publish it, then say `done`.
    #[cfg(taskscope_dumps)]
    ShutdownDump {
        raw: Result<crate::detect::dump::capture::RawDump, String>,
        taken_ns: u64,
        done: std::sync::mpsc::Sender<()>,
    },
    /// A dump ready to publish; `done` hears when it was.
    #[cfg_attr(not(taskscope_dumps), allow(dead_code))]
    Dumped(v1::Dump, Option<std::sync::mpsc::Sender<()>>),
    /// Publish everything now, as the last update (the process is exiting), and report
    /// when the recording has it.
    FinalFlush(std::sync::mpsc::Sender<()>),
    /// End the probe thread's loop (`Probe::shutdown`, after a final flush).
    Stop,
}
