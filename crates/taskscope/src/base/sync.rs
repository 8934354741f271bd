//! The atomics the probe's lock-free structures are written against.
//!
//! In the probe they are std's. The model checks in `tests/loom_models.rs` compile the same
//! files ([`crate::tasks::task_index`], [`crate::tasks::poll_slot`], [`crate::tasks::change_flag`]) against a
//! `sync` module of their own that hands out loom's atomics instead, so what loom explores
//! is the very code the hot path runs, not a copy of it.

pub(crate) mod atomic {
    pub(crate) use std::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering, fence,
    };
}
