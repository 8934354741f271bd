//! A stall's flight-recorder window boiled down to what a terminal can show: per thread, a
//! strip of columns over the window saying how busy the thread was and whether the
//! stalled task was running. Small and fixed in size, so that the model can keep one per
//! stall without growing with the windows' events.

use crate::timeline::{SliceKind, TaskNames, Timeline};
use taskscope_api::v1;

/// Columns a strip has, whatever the terminal's width (the view resamples).
pub(crate) const COLUMNS: usize = 120;

/// What a thread did over one column of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cell {
    /// Not known: the thread's events of then were left out of the window.
    LeftOut,
    /// Polled nothing.
    Idle,
    /// Polled other tasks less than half the column.
    Some,
    /// Polled other tasks half the column or more.
    Busy,
    /// Polled the stalled task.
    Stalled,
}

/// One thread's strip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lane {
    pub(crate) thread: u32,
    pub(crate) name: String,
    pub(crate) cells: Vec<Cell>,
    /// Polls of other tasks in the window (how many were squeezed into the strip).
    pub(crate) polls: usize,
    /// Events its ring refused: the strip may miss polls.
    pub(crate) overflowed: u64,
}

/// The strips of one stall's window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lanes {
    pub(crate) from_ns: u64,
    pub(crate) to_ns: u64,
    pub(crate) lanes: Vec<Lane>,
}

impl Lanes {
    /// The strips of `stall`'s window, when it carries one.
    pub(crate) fn of(stall: &v1::Stall) -> Option<Self> {
        let timeline = Timeline::of_stall(0, stall, &TaskNames::default())?;
        let span = timeline.to_ns.saturating_sub(timeline.from_ns).max(1);
        let column_ns = span.div_ceil(COLUMNS as u64).max(1);
        let lanes = timeline
            .tracks
            .iter()
            .map(|track| {
                let mut busy = [0u64; COLUMNS];
                let mut stalled = [false; COLUMNS];
                let mut polls = 0;
                for slice in timeline.slices.iter().filter(|s| s.thread == track.thread) {
                    if slice.what != SliceKind::Poll {
                        continue;
                    }
                    let mine = slice.task_id == stall.task_id;
                    polls += usize::from(!mine);
                    let start = slice.start_ns.saturating_sub(timeline.from_ns);
                    let end = slice.end_ns.saturating_sub(timeline.from_ns).min(span);
                    let first = (start / column_ns) as usize;
                    for column in first..COLUMNS {
                        let column_start = column as u64 * column_ns;
                        if column_start > end {
                            break;
                        }
                        let overlap = end
                            .min(column_start + column_ns)
                            .saturating_sub(start.max(column_start));
                        if mine {
                            stalled[column] = true;
                        } else {
                            busy[column] += overlap;
                        }
                    }
                }
                // Columns wholly before the thread's events are complete say nothing.
                let known_from =
                    (track.complete_from_ns.saturating_sub(timeline.from_ns) / column_ns) as usize;
                let cells = (0..COLUMNS)
                    .map(|c| match (stalled[c], busy[c]) {
                        (true, _) => Cell::Stalled,
                        (false, 0) if c < known_from => Cell::LeftOut,
                        (false, 0) => Cell::Idle,
                        (false, ns) if ns * 2 >= column_ns => Cell::Busy,
                        _ => Cell::Some,
                    })
                    .collect();
                Lane {
                    thread: track.thread,
                    name: track.name.clone(),
                    cells,
                    polls,
                    overflowed: track.overflowed,
                }
            })
            .collect();
        Some(Self {
            from_ns: timeline.from_ns,
            to_ns: timeline.to_ns,
            lanes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(events: &[(v1::FlightEventKind, u64, u64)]) -> v1::FlightThread {
        let mut thread = v1::FlightThread::default();
        let mut last = 0;
        for &(kind, task, at) in events {
            thread.kinds.push(kind as i32);
            thread.task_ids.push(task);
            thread.at_deltas_ns.push(at - last);
            thread.other_task_ids.push(0);
            last = at;
        }
        thread
    }

    /// Task 1 stalls thread 1 from 600 to 1,200 (the window's end, which starts at 0);
    /// `other` is thread 2.
    fn stall_beside(mut other: v1::FlightThread, events_left_out: u64) -> v1::Stall {
        use v1::FlightEventKind::{FlightEventPollEnd as End, FlightEventPollStart as Start};
        let mut worker = column(&[(Start, 1, 600), (End, 1, 1_200)]);
        worker.thread = 1;
        other.thread = 2;
        v1::Stall {
            task_id: 1,
            thread: 1,
            poll_started_ns: 600,
            duration_ns: 600,
            flight: Some(v1::FlightWindow {
                from_ns: 0,
                to_ns: 1_200,
                threads: vec![worker, other],
                events_left_out,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_stalled_poll_fills_its_columns_and_neighbours_show_as_busy_or_idle() {
        use v1::FlightEventKind::{FlightEventPollEnd as End, FlightEventPollStart as Start};
        let stall = stall_beside(column(&[(Start, 2, 0), (End, 2, 300)]), 0);
        let lanes = Lanes::of(&stall).unwrap();
        let strip = |lane: &Lane| lane.cells.iter().map(|c| *c as u8).collect::<Vec<_>>();
        let worker = strip(&lanes.lanes[0]);
        assert!(worker[..59].iter().all(|&c| c == Cell::Idle as u8));
        assert!(worker[60..].iter().all(|&c| c == Cell::Stalled as u8));
        let other = strip(&lanes.lanes[1]);
        assert!(other[..29].iter().all(|&c| c == Cell::Busy as u8));
        assert!(other[31..].iter().all(|&c| c == Cell::Idle as u8));
        assert_eq!(lanes.lanes[1].polls, 1);
    }

    /// A neighbour whose events before 900 were left out: nothing is said of it before
    /// then (not idle), and its first poll, whose start was left out, begins there, not
    /// at the window's start.
    #[test]
    fn a_neighbours_left_out_past_is_blank_not_idle_nor_one_long_poll() {
        use v1::FlightEventKind::{FlightEventPollEnd as End, FlightEventPollStart as Start};
        let mut other = column(&[(End, 2, 1_000), (Start, 2, 1_100), (End, 2, 1_150)]);
        other.complete_from_ns = 900;
        let stall = stall_beside(other, 40);
        let lanes = Lanes::of(&stall).unwrap();
        let other = &lanes.lanes[1].cells;
        assert!(other[..89].iter().all(|&c| c == Cell::LeftOut), "{other:?}");
        assert!(other[90..100].iter().all(|&c| c == Cell::Busy), "{other:?}");
        assert!(
            other[101..110].iter().all(|&c| c == Cell::Idle),
            "{other:?}"
        );
    }
}
