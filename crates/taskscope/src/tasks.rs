//! One task lifecycle for every route: each task's cell, each thread's poll stack, the
//! hooks route's table of live tasks, and how tasks end.

pub(crate) mod cell;
pub(crate) mod change_flag;
pub(crate) mod closing;
pub(crate) mod dumping;
pub(crate) mod lifecycle;
pub(crate) mod outcome;
pub(crate) mod poll_slot;
pub(crate) mod recycle;
pub(crate) mod shared;
pub(crate) mod task_index;
pub(crate) mod task_table;
pub(crate) mod threads;
pub(crate) mod worker_park;
