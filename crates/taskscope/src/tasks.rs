//! One task lifecycle for every route: each task's cell, each thread's poll stack and
//! flight-recorder ring, the hooks route's table of live tasks, how tasks end, and the
//! runtimes the probe knows.

pub(crate) mod activity;
pub(crate) mod cell;
pub(crate) mod change_flag;
pub(crate) mod dumping;
pub(crate) mod flight;
pub(crate) mod lifecycle;
pub(crate) mod outcome;
pub(crate) mod poll_slot;
pub(crate) mod recycle;
pub(crate) mod ring;
#[cfg(test)]
mod ring_tests;
pub(crate) mod runtimes;
pub(crate) mod shared;
pub(crate) mod task_index;
pub(crate) mod task_table;
pub(crate) mod threads;
pub(crate) mod waits;
pub(crate) mod worker_index;
pub(crate) mod worker_park;
