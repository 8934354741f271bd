//! The signals that ask `check` to stop (SIGINT, SIGTERM, SIGHUP, SIGQUIT). Listening
//! replaces their default action, so `check` outlives them long enough to stop what it
//! runs and to write its report (verdict "interrupted").

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};

const TERMINATING: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

pub(crate) struct Terminating(Vec<Signal>);

impl Terminating {
    /// Starts listening; from now on these signals no longer end the process.
    pub(crate) fn listen() -> anyhow::Result<Self> {
        TERMINATING
            .iter()
            .map(|&number| {
                signal(SignalKind::from_raw(number))
                    .with_context(|| format!("cannot listen for signal {number}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Self)
    }

    /// The next terminating signal received, whichever it is.
    pub(crate) async fn recv(&mut self) -> libc::c_int {
        std::future::poll_fn(|cx| {
            for (signal, &number) in self.0.iter_mut().zip(&TERMINATING) {
                if signal.poll_recv(cx).is_ready() {
                    return std::task::Poll::Ready(number);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}
