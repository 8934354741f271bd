//! Which of its runtime's workers a worker thread is, on plain stable tokio: the index
//! tokio's stable metrics (`worker_park_count`, `worker_total_busy_duration`) are kept
//! under, which tokio does not tell a thread (`worker_thread_id` needs
//! `--cfg tokio_unstable`).
//!
//! tokio counts a worker's park (and submits its metrics) right after `on_thread_park`
//! and before `on_thread_unpark`. So between its two hooks a thread's own worker's park
//! count moves, and any other worker's moves only if that worker happened to park in the
//! meantime. Each park and wake the thread's hooks note which counts moved; the worker
//! that moved every time, far ahead of any other, is this thread's. A park that tokio
//! turned down (work arrived as it was about to park) moves no count: the count of misses
//! only grows when some other worker moved instead, which in such a short window is rare.
//!
//! All of it is the worker thread's own state, touched only by its hooks (a handful of
//! loads per park, no lock, no allocation after the first park).

use tokio::runtime::RuntimeMetrics;

/// Parks and wakes in which the thread's worker must lead every other worker by this
/// many votes before it is taken for the thread's.
const LEAD: i64 = 3;
/// Most workers followed; a runtime with more leaves its threads' indexes unknown.
const MAX_WORKERS: usize = 64;

/// The votes of one worker thread.
pub(crate) struct Finder {
    metrics: RuntimeMetrics,
    at_park: Vec<u64>,
    score: Vec<i64>,
}

impl Finder {
    /// For a thread of the runtime `metrics` belongs to; `None` when it has too many workers.
    pub(crate) fn new(metrics: RuntimeMetrics) -> Option<Self> {
        let workers = metrics.num_workers();
        (workers <= MAX_WORKERS).then(|| Self {
            metrics,
            at_park: vec![0; workers],
            score: vec![0; workers],
        })
    }

    /// `on_thread_park`: notes every worker's park count.
    pub(crate) fn parking(&mut self) {
        for (worker, count) in self.at_park.iter_mut().enumerate() {
            *count = self.metrics.worker_park_count(worker);
        }
    }

    /// `on_thread_unpark`: votes for the workers whose count moved since the park, and
    /// returns the thread's worker once one leads.
    pub(crate) fn unparked(&mut self) -> Option<usize> {
        let mut moved = [false; MAX_WORKERS];
        for (worker, count) in self.at_park.iter().enumerate() {
            moved[worker] = self.metrics.worker_park_count(worker) != *count;
        }
        vote(&mut self.score, &moved[..self.at_park.len()])
    }
}

/// One park's votes: +1 to each worker that moved; when some did, -4 to those that did
/// not (the thread's own worker misses only when tokio turned its park down). The leader,
/// when it leads every other by [`LEAD`].
fn vote(score: &mut [i64], moved: &[bool]) -> Option<usize> {
    let any = moved.iter().any(|m| *m);
    for (score, moved) in score.iter_mut().zip(moved) {
        if *moved {
            *score += 1;
        } else if any {
            *score -= 4;
        }
    }
    let (leader, best) = score.iter().enumerate().max_by_key(|(_, s)| **s)?;
    let second = (score.iter().enumerate())
        .filter(|(i, _)| *i != leader)
        .map(|(_, s)| *s)
        .max();
    (*best >= LEAD && second.is_none_or(|s| best - s >= LEAD)).then_some(leader)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_that_moves_at_every_park_is_found() {
        let mut score = vec![0; 3];
        assert_eq!(vote(&mut score, &[false, true, false]), None);
        assert_eq!(vote(&mut score, &[true, true, false]), None);
        assert_eq!(vote(&mut score, &[false, true, true]), Some(1));
        assert_eq!(vote(&mut score, &[true, true, true]), Some(1));
    }

    #[test]
    fn a_worker_that_moved_as_often_is_no_leader() {
        let mut score = vec![0; 2];
        for _ in 0..10 {
            assert_eq!(vote(&mut score, &[true, true]), None);
        }
    }

    #[test]
    fn a_single_worker_is_found_after_a_few_parks() {
        let mut score = vec![0; 1];
        assert_eq!(vote(&mut score, &[true]), None);
        assert_eq!(vote(&mut score, &[true]), None);
        assert_eq!(vote(&mut score, &[true]), Some(0));
    }
}
