//! Runtimes the app builds by hand, on the hooks route: tokio's runtime hooks report their
//! tasks to the probe ([`install`]), and [`block_on`] runs the runtime's body watched.
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
//!
//! No hook runs for the future a runtime's `block_on` polls: that body (an accept loop, a
//! service's set-up) is no task to tokio. [`block_on`] wraps it so that its polls are
//! timed like a task's, and a blocking call in it is reported as a stall at the
//! `block_on` call, as `#[taskscope::main]` does for the body of `main` (the macros wrap
//! their body the same way, [`body`]).

use std::future::Future;
use std::panic::Location;
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
/// taskscope::block_on(&runtime, async {
///     // the accept loop
/// });
/// ```
///
/// Run the runtime's body with [`block_on`] (in place of `runtime.block_on`): the hooks
/// see spawned tasks only, and a stall in the body itself would go unseen.
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

/// Runs `future` on `runtime` as `runtime.block_on(future)` does, with the body watched:
/// for a runtime the app builds by hand, what `#[taskscope::main]` does for the body of
/// `main`.
///
/// ```no_run
/// taskscope::Builder::from_env().init_with_hooks().expect("the probe starts");
/// let mut builder = tokio::runtime::Builder::new_current_thread();
/// taskscope::hooks::install(&mut builder);
/// let runtime = builder.enable_all().build().unwrap();
/// taskscope::block_on(&runtime, async {
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:1883").await.unwrap();
///     // accept connections ...
/// });
/// ```
///
/// The body is a `block_on` task named after the calling thread, at this call: a poll of
/// it that holds the thread past the stall threshold (a certificate loaded
/// synchronously, a blocking read) is reported as a stall there, with its stack. While it
/// runs, the runtime's tasks are reachable for await-chain dumps (the `Dump` call, and
/// `taskscope check`'s dumps when tasks go idle).
///
/// Without a probe, or on the tracing route (where tokio's span of the `block_on` already
/// marks the body's polls), it is `runtime.block_on(future)` and a dump registration.
#[track_caller]
pub fn block_on<F: Future>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output {
    let at = Location::caller();
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("block_on");
    let watched = body(future, name, at.file(), at.line(), at.column());
    let ending = crate::tasks::runtimes::Ending::Unseen;
    let _reachable = crate::tasks::runtimes::register_as(runtime.handle(), ending);
    runtime.block_on(watched)
}

/// Wraps the body of `name`, written at `file:line:column`: the one way a `block_on` body
/// is watched, for [`block_on`] and the macros.
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
