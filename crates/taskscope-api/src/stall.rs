//! Which of a stall's stack samples stands for it, for every face that shows one stack.

use crate::v1;

/// The stall's first sample that has frames. The first sample is taken when the watchdog
/// has just seen the poll still running; a later one can land just after the stall ended
/// (the watchdog looks every few milliseconds, and the last sample of a stall as long as
/// the sampling schedule's last step is taken right at its end), showing code that ran
/// after it.
pub fn telling_sample(stall: &v1::Stall) -> Option<&v1::StackSample> {
    stall.samples.iter().find(|s| !s.frames.is_empty())
}
