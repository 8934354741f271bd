//! Stalls derived from console-api's poll timestamps. console-subscriber reports no stalls:
//! it publishes a task's statistics (every second by default) only when they changed, and
//! they hold the start and end of its latest poll. A poll whose start is later than its end
//! is running; [`PollWatch`] remembers it between updates (whose `now` keeps the clock) and
//! reports it as a stall once past the threshold, then ended with its exact duration.

use taskscope_api::v1;

/// A task's latest poll, as one statistics message shows it (probe ns).
#[derive(Clone, Copy, Debug)]
pub(super) struct LastPoll {
    pub(super) started: Option<u64>,
    pub(super) ended: Option<u64>,
}

impl LastPoll {
    pub(super) fn running(self) -> bool {
        match (self.started, self.ended) {
            (Some(start), Some(end)) => start > end,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// Stall ids, unique within the stream, and the threshold every stall is judged by.
#[derive(Debug)]
pub(super) struct StallRules {
    next_id: u64,
    pub(super) threshold_ns: u64,
}

impl StallRules {
    pub(super) fn new(threshold_ns: u64) -> Self {
        Self {
            next_id: 1,
            threshold_ns,
        }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

/// What is known of one task's polls between updates.
#[derive(Debug, Default)]
pub(super) struct PollWatch {
    /// Start of the poll running at the latest word about the task.
    running_since: Option<u64>,
    /// The stall reported for the running poll: (stall id, poll start).
    stall: Option<(u64, u64)>,
    /// Its duration as last reported.
    stall_duration_ns: u64,
    /// Start of the last poll already checked for having been a stall once it ended.
    last_checked_poll: u64,
    /// Longest poll seen (at a publish, or in the task's histogram).
    pub(super) max_poll_ns: u64,
}

impl PollWatch {
    /// New statistics of task `task_id`: the stall they close (the poll returned, or
    /// another began), and the stall they prove when the latest poll, already over, was
    /// long (it began and ended between two publishes). Blocking tasks are never stalls.
    pub(super) fn observe(
        &mut self,
        task_id: u64,
        last: LastPoll,
        blocking: bool,
        rules: &mut StallRules,
        out: &mut Vec<v1::Stall>,
    ) {
        let running = last.running();
        if let Some((stall_id, stall_start)) = self.stall
            && (!running || last.started != Some(stall_start))
        {
            let duration_ns = match last.ended {
                Some(end) if last.started == Some(stall_start) && end >= stall_start => {
                    end - stall_start
                }
                // A later poll began: this one ended before it, when exactly is unknown.
                _ => self.stall_duration_ns,
            };
            self.max_poll_ns = self.max_poll_ns.max(duration_ns);
            self.last_checked_poll = stall_start;
            self.stall = None;
            out.push(stall(
                stall_id,
                v1::StallPhase::Ended,
                task_id,
                stall_start,
                duration_ns,
            ));
        }
        if let (Some(start), Some(end), false) = (last.started, last.ended, running) {
            let duration_ns = end.saturating_sub(start);
            self.max_poll_ns = self.max_poll_ns.max(duration_ns);
            if start > self.last_checked_poll {
                self.last_checked_poll = start;
                if duration_ns >= rules.threshold_ns && !blocking {
                    let stall_id = rules.next_id();
                    out.push(stall(
                        stall_id,
                        v1::StallPhase::Ended,
                        task_id,
                        start,
                        duration_ns,
                    ));
                }
            }
        }
        self.running_since = if running { last.started } else { None };
    }

    /// At `now_ns`: the running poll, once past the threshold, as a stall started or still
    /// going on.
    pub(super) fn tick(
        &mut self,
        task_id: u64,
        now_ns: u64,
        rules: &mut StallRules,
        out: &mut Vec<v1::Stall>,
    ) {
        let Some(start) = self.running_since else {
            return;
        };
        let duration_ns = now_ns.saturating_sub(start);
        if duration_ns < rules.threshold_ns {
            return;
        }
        let (stall_id, phase) = match self.stall {
            Some((stall_id, stall_start)) if stall_start == start => {
                (stall_id, v1::StallPhase::Ongoing)
            }
            _ => {
                let stall_id = rules.next_id();
                self.stall = Some((stall_id, start));
                (stall_id, v1::StallPhase::Started)
            }
        };
        self.stall_duration_ns = duration_ns;
        out.push(stall(stall_id, phase, task_id, start, duration_ns));
    }

    pub(super) fn is_running(&self) -> bool {
        self.running_since.is_some()
    }

    /// The longest poll so far at `now_ns`, the running one included.
    pub(super) fn longest_ns(&self, now_ns: u64) -> u64 {
        let running = self
            .running_since
            .map_or(0, |start| now_ns.saturating_sub(start));
        self.max_poll_ns.max(running)
    }
}

fn stall(
    stall_id: u64,
    phase: v1::StallPhase,
    task_id: u64,
    poll_started_ns: u64,
    duration_ns: u64,
) -> v1::Stall {
    v1::Stall {
        stall_id,
        phase: phase as i32,
        task_id,
        poll_started_ns,
        duration_ns,
        ..Default::default()
    }
}
