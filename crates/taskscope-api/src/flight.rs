//! The flight recorder's windows (`Stall.flight`) read back as events.
//!
//! On the wire a thread's events are columns of one length with times as differences, so
//! that a window of tens of thousands of events stays small; every reader wants them as a
//! list of whole events with absolute times, which [`events`] gives.

use crate::v1;

/// One event of a thread, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlightEvent {
    /// What happened (an unknown number reads as `FlightEventUnspecified`).
    pub kind: v1::FlightEventKind,
    /// The task it happened to.
    pub task_id: u64,
    /// Probe time.
    pub at_ns: u64,
    /// The related task: the spawning or waking task (0: none, or no such relation).
    pub other_task_id: u64,
}

/// `thread`'s events in `window`, oldest first. Columns of unequal length (a damaged or
/// hostile message) are read as far as they all go.
pub fn events<'a>(
    window: &v1::FlightWindow,
    thread: &'a v1::FlightThread,
) -> impl Iterator<Item = FlightEvent> + 'a {
    let mut at_ns = window.from_ns;
    thread
        .kinds
        .iter()
        .zip(&thread.task_ids)
        .zip(&thread.at_deltas_ns)
        .zip(&thread.other_task_ids)
        .map(move |(((&kind, &task_id), &delta), &other_task_id)| {
            at_ns = at_ns.saturating_add(delta);
            FlightEvent {
                kind: v1::FlightEventKind::try_from(kind)
                    .unwrap_or(v1::FlightEventKind::FlightEventUnspecified),
                task_id,
                at_ns,
                other_task_id,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_add_up_from_the_windows_start_and_short_columns_stop_the_read() {
        let window = v1::FlightWindow {
            from_ns: 1_000,
            ..Default::default()
        };
        let thread = v1::FlightThread {
            kinds: vec![1, 2, 99],
            task_ids: vec![7, 7, 8],
            at_deltas_ns: vec![10, 5, 1],
            other_task_ids: vec![0, 0],
            ..Default::default()
        };
        let read: Vec<_> = events(&window, &thread).collect();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].at_ns, 1_010);
        assert_eq!(read[1].at_ns, 1_015);
        assert_eq!(read[1].kind, v1::FlightEventKind::FlightEventPollEnd);
    }
}
