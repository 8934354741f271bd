//! What the dashboard shows, computed from the model and nothing else: the task table's
//! rows and their columns, each task's flags, live tasks grouped by where they wait, who
//! holds the locks they wait on, the numbers' formats and the selection. No terminal, no I/O: the widgets in `view/` draw
//! these, and the event loop (`app.rs`, `run.rs`) only feeds them.

pub(crate) mod findings;
pub(crate) mod holders;
pub(crate) mod metrics;
pub(crate) mod resources;
pub(crate) mod rows;
pub(crate) mod selection;
pub(crate) mod timeline;
pub(crate) mod waits;
