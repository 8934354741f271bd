//! Writes the update stream to a recording file, on a thread of its own.
//!
//! A slow or stuck disk (or a FIFO nobody reads) blocks only this thread. The aggregator
//! hands it batches through a bounded queue and never waits: when the queue is full the
//! batch is counted as dropped and the next batch that fits is preceded by a full
//! snapshot, so the recording stays consistent (a reader resets its state on a snapshot).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use taskscope_api::recording::{EXTENSION, Writer};
use taskscope_api::v1;

use crate::tasks::shared::Shared;

enum Job {
    Write(Vec<v1::Update>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The aggregator's end of the recorder.
pub(crate) struct Recorder {
    jobs: SyncSender<Job>,
    shared: Arc<Shared>,
    /// A batch was dropped: the next write must start with a snapshot.
    pub(crate) needs_snapshot: bool,
}

/// Where to write: `path` itself, or `<path>/<program>-<pid>.tsrec` when `path` is an
/// existing directory (so that many processes, e.g. test binaries, can record side by side).
pub(crate) fn resolve_path(path: &Path, program: &str) -> PathBuf {
    if path.is_dir() {
        path.join(format!("{program}-{}.{EXTENSION}", std::process::id()))
    } else {
        path.to_path_buf()
    }
}

impl Recorder {
    pub(crate) fn start(path: PathBuf, shared: Arc<Shared>) -> std::io::Result<Self> {
        let (jobs, receiver) = sync_channel(256);
        let writer = std::thread::Builder::new()
            .name("taskscope-recorder".into())
            .spawn(move || {
                crate::base::quiet::quiet_forever();
                write_loop(&path, receiver)
            })?;
        // It ends once the recorder (on the probe thread) is dropped.
        shared.own_thread(writer);
        Ok(Self {
            jobs,
            shared,
            needs_snapshot: false,
        })
    }

    /// Queues a batch; never blocks.
    pub(crate) fn write(&mut self, updates: Vec<v1::Update>) {
        let count = updates.len() as u64;
        match self.jobs.try_send(Job::Write(updates)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.shared
                    .drops
                    .recording_updates
                    .fetch_add(count, Ordering::Relaxed);
                self.needs_snapshot = true;
            }
        }
    }

    /// Asks for everything queued to be on disk; the returned receiver hears when it is.
    pub(crate) fn flush(&self) -> Option<std::sync::mpsc::Receiver<()>> {
        let (done, receiver) = std::sync::mpsc::channel();
        self.jobs.try_send(Job::Flush(done)).ok()?;
        Some(receiver)
    }
}

fn write_loop(path: &Path, jobs: Receiver<Job>) {
    let mut writer = match Writer::create(path) {
        Ok(writer) => Some(writer),
        Err(e) => {
            crate::base::diag::warn(&format!(
                "cannot record to {}: {e}; the app runs on without a recording \
                 (check TASKSCOPE_RECORD)",
                path.display()
            ));
            None
        }
    };
    for job in jobs {
        match job {
            Job::Write(updates) => {
                if let Some(w) = writer.as_mut()
                    && let Err(e) = w.write(&updates)
                {
                    crate::base::diag::warn(&format!(
                        "recording to {} failed: {e}; recording stops here",
                        path.display()
                    ));
                    writer = None;
                }
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}
