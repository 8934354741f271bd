//! Await chains: where each live task is waiting, from tokio's task dumps.
//!
//! A stall stack says where a *running* poll is stuck; an await chain says where a
//! *parked* task waits: the `.await` of a channel whose sender lives forever, of a
//! `Notify` nobody notifies, of a `JoinHandle` of a task that is itself stuck. tokio's
//! `Handle::dump` gives it for every task of a runtime (Linux on x86_64 and aarch64, with
//! `--cfg tokio_unstable`; the probe turns tokio's `taskdump` feature on there, so apps add
//! nothing).
//!
//! Dumps are taken on request (`Dump` RPC, [`requests`]), and just before a runtime
//! taskscope drives shuts down with tasks still alive ([`crate::setup::shutdown`]), so that `check`
//! can say where each leaked task was parked. A dump pauses the runtime's workers while it
//! re-polls every task, so the probe never takes one while a worker is stalled, takes one at
//! a time, bounds how often, and declines one that could hurt the app ([`safety`], and
//! once per process [`canary`]).

#[cfg(taskscope_dumps)]
mod canary;
#[cfg(taskscope_dumps)]
pub(crate) mod capture;
#[cfg(taskscope_dumps)]
mod chains;
#[cfg(taskscope_dumps)]
pub(crate) mod requests;
#[cfg(taskscope_dumps)]
mod safety;

/// Whether this build can take dumps, and if not, why (said once to clients).
pub(crate) fn unavailable_reason() -> Option<&'static str> {
    if cfg!(taskscope_dumps) {
        None
    } else if cfg!(tokio_unstable) {
        Some(
            "await chains are not available on this platform (tokio's task dumps need Linux \
             on x86_64 or aarch64)",
        )
    } else {
        Some("await chains need the app built with --cfg tokio_unstable")
    }
}
