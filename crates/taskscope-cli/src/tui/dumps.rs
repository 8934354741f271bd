//! Taking a dump from the dashboard (`d`): whether one can be asked for here, and what
//! the answer does. The request itself is I/O: the key returns
//! [`Outcome::TakeDump`](super::keys::Outcome) and the loop hands it to the live link.

use taskscope_api::v1;

use super::app::{App, Source};
use super::keys::Outcome;
use crate::duration::human_ns;
use crate::source::grpc::DumpError;

/// Why no dump can be asked for from what is being watched, if so.
fn cannot_dump(app: &App) -> Option<String> {
    if matches!(app.source, Source::Replay(_)) {
        return Some(
            "dumps cannot be taken from a recording: it shows the dumps recorded in it, at \
             their time"
                .to_owned(),
        );
    }
    let model = &app.model;
    if model.is_console_target() {
        return Some("a console-subscriber target cannot take dumps".to_owned());
    }
    let unavailable = model.process().map_or("", |p| p.dumps_unavailable.as_str());
    if !unavailable.is_empty() {
        return Some(format!(
            "await chains are not available in this process: {unavailable}"
        ));
    }
    None
}

impl App {
    /// `d`: asks the loop to take a dump, or says why it cannot be.
    pub(crate) fn take_dump(&mut self) -> Outcome {
        if let Some(why) = cannot_dump(self) {
            self.notice = Some(why);
            return Outcome::Continue;
        }
        if self.taking_dump {
            self.notice = Some("a dump is being taken already".to_owned());
            return Outcome::Continue;
        }
        Outcome::TakeDump
    }

    /// The loop passed the request on (`asked`), or could not (no live link, or one is
    /// on its way already).
    pub(crate) fn dump_requested(&mut self, asked: bool) {
        if asked {
            self.taking_dump = true;
        } else {
            self.notice = Some("cannot ask for a dump now: not connected to a probe".to_owned());
        }
    }

    /// The answer to a dump asked for. The probe also publishes the dump on the watch
    /// stream, so it may be here already: folding it in again changes nothing, and a dump
    /// older than the latest one seen is left out rather than put back over newer chains.
    pub(crate) fn on_dump(&mut self, answer: Result<Box<v1::Dump>, DumpError>) {
        self.taking_dump = false;
        let dump = match answer {
            Ok(dump) => dump,
            Err(error) => {
                self.notice = Some(error.to_string());
                return;
            }
        };
        let paused = if self.frozen.is_some() {
            " (paused: it shows when you resume)"
        } else {
            ""
        };
        self.notice = Some(format!("{}{paused}", summary(&dump)));
        let newer_seen = self
            .model
            .waiting()
            .latest()
            .is_some_and(|latest| latest.taken_ns > dump.taken_ns);
        if newer_seen {
            return;
        }
        let taken_ns = dump.taken_ns;
        self.apply(&v1::Update {
            now_ns: taken_ns,
            dumps: vec![*dump],
            ..Default::default()
        });
    }
}

/// What the status line says about a dump that came back.
fn summary(dump: &v1::Dump) -> String {
    if !dump.skipped.is_empty() {
        return format!("the dump was skipped: {}", dump.skipped);
    }
    let left_out = match dump.chains_left_out {
        0 => String::new(),
        n => format!(" ({n} left out: the dump's size limit)"),
    };
    format!(
        "dump taken: {} tasks{left_out}, the runtime held for {}; see the Waiting view (5)",
        dump.chains.len(),
        human_ns(dump.pause_ns)
    )
}
