//! Whether tokio's task spans reach the probe's layer, on the tracing route with the layer
//! composed into the app's own subscriber (`taskscope::layer()`, `Builder::build`).
//!
//! A subscriber built as
//! `registry().with(EnvFilter::from_default_env()).with(fmt::layer()).with(taskscope::layer())`
//! puts the `EnvFilter` in front of every layer: a filter used as a layer decides for the
//! whole subscriber, and tokio's `runtime.spawn` spans (level TRACE) are disabled before any
//! layer, the probe's per-layer filter included, is asked. The probe then sees no task and,
//! left alone, a program full of stalls would look healthy and empty. So the probe looks,
//! on its own thread at each publish (never on an app thread), for either sign:
//!
//! * a global subscriber is set and the process's maximum level (`LevelFilter::current()`,
//!   the most verbose any registered subscriber asks for) is below TRACE at two publishes
//!   in a row: no TRACE span can be created anywhere, tokio's included;
//! * the runtime the layer was made in has spawned tasks since the subscriber was set, and
//!   the span of none of them reached the layer (a filter that lets TRACE through for other
//!   targets but not tokio's), seen at two publishes in a row, so that a span still on its
//!   way to the layer is not taken for a missing one.
//!
//! Either is reported as `Instrumentation::Filtered` (a warning on stderr, once; a line in
//! every view; `check` cannot judge). The first span seen ends it for good.
//!
//! A probe built without its `tracing-route` feature has a third way to see nothing, on
//! `init()`'s route too: tokio makes no span at all unless another crate turned its
//! `tracing` feature on. The second sign finds it the same way, and the warning then names
//! that cause.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::runtime::Handle;
use tracing_core::LevelFilter;

use crate::base::diag;

/// The runtime `layer()`/`Builder::build` was called in, whose spawn count says whether the
/// app spawns tasks the layer does not see. Process-wide because the layer may be handed
/// out before any probe state exists for it to carry, and a process has one probe.
static LAYER_RUNTIME: OnceLock<Option<Handle>> = OnceLock::new();
/// The probe's layer was handed out for the app's own subscriber (not `init()`'s, whose
/// filtering the probe controls).
static COMPOSED: AtomicBool = AtomicBool::new(false);

/// Notes that the layer goes into the app's own subscriber, and the runtime it is made in.
pub(crate) fn composed() {
    COMPOSED.store(true, Ordering::Relaxed);
    LAYER_RUNTIME.get_or_init(|| Handle::try_current().ok());
    warn_without_tracing_route();
}

/// Notes that the probe installed its own subscriber (`init()`), and the runtime it was
/// called in. Its filtering is the probe's, so only a tokio without its `tracing` feature
/// can keep the spans from it: looked for only when the probe was built without the
/// `tracing-route` feature, which is what turns tokio's on.
pub(crate) fn installed() {
    if !SPANS_NEED_ANOTHER_CRATE {
        return;
    }
    LAYER_RUNTIME.get_or_init(|| Handle::try_current().ok());
    warn_without_tracing_route();
}

/// Says once, when the tracing route starts, that this build may give it no span.
fn warn_without_tracing_route() {
    if !SPANS_NEED_ANOTHER_CRATE {
        return;
    }
    static WARNED: AtomicBool = AtomicBool::new(false);
    diag::warn_once(
        &WARNED,
        "taskscope was built without its `tracing-route` feature (`default-features = \
         false`): tokio makes the task spans this route reads only with its own `tracing` \
         feature, which another crate must then turn on. If the probe sees no task, turn the \
         feature back on, or use #[taskscope::main], which reads no span",
    );
}

/// The probe was built without the `tracing-route` feature: tokio has its `tracing`
/// feature only if another crate of the app turned it on.
const SPANS_NEED_ANOTHER_CRATE: bool = !cfg!(feature = "tracing-route");

/// What the probe's thread remembers between publishes.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    /// The layer's runtime's spawn count when a global subscriber was first seen set.
    baseline: Option<u64>,
    /// Spawns without spans were seen at the previous publish.
    spawns_suspect: bool,
    /// The maximum level was below TRACE at the previous publish. A single reading is not
    /// trusted: tracing recomputes the level each time a dispatcher is registered (the
    /// probe's own threads register one), and a reading taken while the app's subscriber
    /// is being installed was once seen to say `off` for a subscriber at TRACE.
    level_suspect: bool,
    filtered: bool,
}

impl Reach {
    /// Looks again; `seen` is whether any task span has reached the layer.
    pub(crate) fn update(&mut self, seen: bool) {
        let composed = COMPOSED.load(Ordering::Relaxed);
        if seen || !cfg!(tokio_unstable) || !(composed || SPANS_NEED_ANOTHER_CRATE) {
            self.filtered = false;
            return;
        }
        if self.filtered || !tracing::dispatcher::has_been_set() {
            return;
        }
        let spawns_unseen = self.spawns_unseen();
        let level_too_low = composed && LevelFilter::current() < LevelFilter::TRACE;
        self.filtered =
            (level_too_low && self.level_suspect) || (spawns_unseen && self.spawns_suspect);
        self.level_suspect = level_too_low;
        self.spawns_suspect = spawns_unseen;
        if self.filtered {
            static WARNED: AtomicBool = AtomicBool::new(false);
            diag::warn_once(&WARNED, &warning(level_too_low));
        }
    }

    /// Whether tokio's task spans are filtered away before they reach the layer.
    pub(crate) fn filtered(&self) -> bool {
        self.filtered
    }

    fn spawns_unseen(&mut self) -> bool {
        let Some(spawned) = spawned_on_layer_runtime() else {
            return false;
        };
        let baseline = *self.baseline.get_or_insert(spawned);
        spawned > baseline
    }
}

/// Tasks spawned so far on the runtime the layer was made in, where tokio counts them.
fn spawned_on_layer_runtime() -> Option<u64> {
    #[cfg(all(tokio_unstable, target_has_atomic = "64"))]
    {
        let handle = LAYER_RUNTIME.get()?.as_ref()?;
        Some(handle.metrics().spawned_tasks_count())
    }
    #[cfg(not(all(tokio_unstable, target_has_atomic = "64")))]
    {
        None
    }
}

/// What the person running the app reads: the cause, and the composition that works.
pub(crate) fn warning(level_too_low: bool) -> String {
    if SPANS_NEED_ANOTHER_CRATE && !level_too_low {
        return "taskscope sees no tasks: the app spawns tasks but tokio makes no task span. \
                taskscope was built without its `tracing-route` feature, and no other crate \
                turned on tokio's `tracing` feature: turn the feature back on (it is a \
                default feature), or use #[taskscope::main], which reads no span"
            .to_owned();
    }
    let cause = if level_too_low {
        format!(
            "the subscriber's most verbose level is {}, so tokio's task spans (TRACE) are \
             never created",
            LevelFilter::current()
        )
    } else {
        "the app spawns tasks but none of tokio's task spans reaches the probe's layer".to_owned()
    };
    format!(
        "taskscope sees no tasks: {cause}. A filter added with `.with(EnvFilter::…)` filters \
         every layer, the probe's too; put it on the log layer instead: \
         `.with(fmt::layer().with_filter(EnvFilter::from_default_env()))` \
         (docs/guide.md, \"Keeping #[tokio::main]\")"
    )
}
