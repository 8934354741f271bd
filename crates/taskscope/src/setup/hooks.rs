//! Runtimes the app builds by hand, on the hooks route: tokio's runtime hooks report their
//! tasks to the probe.
//!
//! With `--cfg tokio_unstable`, a runtime can call back on every spawn, before and after
//! every poll, and when a task terminates. Fed from there, the probe skips what the
//! tracing route pays on every poll whether the probe wants it or not: tokio creating a
//! span per task, and the subscriber's registry looking that span up at every enter and
//! exit.
//!
//! What the hooks cannot see, and the tracing route can: task names, `spawn_blocking` and
//! `LocalSet` tasks, wakers, and an abort (tokio ends an aborted task inside a poll just as
//! it ends a completed one). `docs/guide.md` ("Routes") says when to take which.

use std::future::Future;
use std::sync::atomic::AtomicBool;

use crate::base::diag;
use crate::setup::probe;

pub use crate::observe::hooks::Body;

/// Adds the probe's hooks to a runtime being built, for apps that build their runtimes
/// by hand rather than with `#[taskscope::main]`:
///
/// ```no_run
/// taskscope::Builder::from_env().init_with_hooks().expect("the probe starts");
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// taskscope::hooks::install(&mut builder);
/// let runtime = builder.enable_all().build().unwrap();
/// ```
///
/// On the tracing route (the probe started by [`crate::init`], or the hooks route turned
/// down by waker tracking or `TASKSCOPE_ROUTE=tracing`) this does nothing: tokio's spans
/// already report every runtime's tasks. Before any probe is started, it says so on stderr.
pub fn install(builder: &mut tokio::runtime::Builder) -> &mut tokio::runtime::Builder {
    if let Some(shared) = probe::on_hooks() {
        crate::observe::hooks::add_to(builder, shared);
    } else if probe::running().is_none() {
        static WARNED: AtomicBool = AtomicBool::new(false);
        diag::warn_once(
            &WARNED,
            "taskscope::hooks::install was called before the probe started; start it first \
             with taskscope::Builder::from_env().init_with_hooks()",
        );
    }
    builder
}

/// Wraps the body of `name`, written at `file:line:column`, for the macros.
#[doc(hidden)]
pub fn body<F: Future>(
    future: F,
    name: &str,
    file: &'static str,
    line: u32,
    column: u32,
) -> Body<F> {
    crate::observe::hooks::body(probe::on_hooks(), future, name, file, line, column)
}
