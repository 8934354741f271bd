//! Settings, the probe's clock, interned names, diagnostics and what the OS says about
//! threads: used by every layer above, using none of them.

pub(crate) mod auth;
pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod diag;
pub(crate) mod flight_budget;
pub(crate) mod intern;
pub(crate) mod quiet;
pub(crate) mod schedstat;
pub(crate) mod sync;
pub(crate) mod thread_state;
