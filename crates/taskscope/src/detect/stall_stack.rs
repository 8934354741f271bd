//! Where a stalled thread is stuck: its stack, captured while it is stalled.
//!
//! The capture itself lives in the `taskscope-stack` crate (a signal to the stalled thread,
//! whose handler only copies its registers and stack into a buffer prepared in advance;
//! unwinding and symbolization happen here, on the watchdog's thread). This module decides
//! *when* to sample — when the stall is first seen, then at 2x and 4x the threshold into
//! the poll, so that the samples tell a blocked thread from a busy one — and turns samples
//! into protocol frames. Nothing here runs unless a stall is happening.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use taskscope_api::v1;
use taskscope_stack::{Activity, Frame, Sampler, Symbolizer, ThreadTarget};

use crate::base::schedstat::{self, SchedStat};
use crate::tasks::shared::{ProbeEvent, Shared};
use crate::tasks::threads::Polling;

/// How long the watchdog waits for a stalled thread to answer a sample request.
const SAMPLE_TIMEOUT: Duration = Duration::from_millis(50);
/// Samples taken per stall.
const SAMPLES_PER_STALL: u32 = 3;

/// Where a sampler can reach a thread.
pub(crate) type Target = ThreadTarget;

/// The stack sampler, when this platform and build can capture stacks safely.
///
/// Sampling (a signal and a copy of the stack) happens on the watchdog's thread, at the
/// moment that matters; symbolizing (reading debug info, slow the first time) happens on a
/// thread of its own, so that it delays neither stall reports nor the next samples.
pub(crate) struct Capture {
    sampler: Sampler,
    symbolize: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

/// Work for the symbolizer thread.
pub(crate) enum Job {
    /// A stall's stack sample.
    Sample(RawSample),
    /// Stacks of code addresses (innermost first, return addresses already minus one)
    /// to resolve for an await-chain dump.
    #[cfg_attr(not(taskscope_dumps), allow(dead_code))]
    Stacks {
        stacks: Vec<Vec<usize>>,
        reply: tokio::sync::oneshot::Sender<Vec<ResolvedStack>>,
    },
    /// The probe is stopped: the thread ends.
    Stop,
}

/// One resolved stack.
#[cfg_attr(not(taskscope_dumps), allow(dead_code))]
pub(crate) struct ResolvedStack {
    pub(crate) frames: Vec<v1::Frame>,
    /// Position in `frames` of the innermost frame of the user's own code.
    pub(crate) innermost_user: Option<usize>,
}

/// A sample not yet symbolized.
pub(crate) struct RawSample {
    thread: u32,
    started_ns: u64,
    at_ns: u64,
    /// What the thread had done with its time when sampled (running, or waiting for a
    /// CPU), where the platform tells.
    sched: Option<SchedStat>,
    addresses: Result<Vec<usize>, String>,
}

/// A stall: the thread and the start of its poll.
type StallKey = (u32, u64);

/// Stalls whose stacks the symbolizer remembers (for blocked/busy), oldest forgotten first.
const REMEMBERED_STALLS: usize = 64;

impl Capture {
    /// Sets sampling up on `symbolize`'s thread, or records (for clients to show) why
    /// stacks are unavailable.
    fn new(shared: &Arc<Shared>, symbolize: Option<mpsc::Sender<Job>>) -> Option<Self> {
        let result = if shared.config.capture_stacks {
            Sampler::install().map_err(|e| e.to_string())
        } else {
            Err("stack capture is off (TASKSCOPE_STACKS=off)".to_owned())
        };
        let result = result.and_then(|sampler| {
            Ok(Self {
                sampler,
                symbolize: symbolize.ok_or("cannot start the symbolizer thread")?,
                shared: shared.clone(),
            })
        });
        let mut state = shared
            .stack_capture
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(capture) => {
                state.enabled = true;
                Some(capture)
            }
            Err(reason) => {
                state.enabled = false;
                state.unavailable_reason = reason;
                None
            }
        }
    }

    /// Samples `target` now and hands the addresses to the symbolizer.
    fn sample(&self, thread: u32, target: &Target, polling: Polling) {
        let at_ns = crate::base::clock::now_ns().saturating_sub(polling.started_ns);
        let sched = schedstat::of_thread(target.tid() as u64);
        let addresses = self
            .sampler
            .sample(target, SAMPLE_TIMEOUT)
            .map_err(|e| e.to_string());
        self.shared.samples_in_flight.fetch_add(1, Ordering::AcqRel);
        let sent = self.symbolize.send(Job::Sample(RawSample {
            thread,
            started_ns: polling.started_ns,
            at_ns,
            sched,
            addresses,
        }));
        if sent.is_err() {
            self.shared.samples_in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The symbolizer thread's queue, for await-chain dumps to resolve their stacks on.
#[derive(Clone)]
pub(crate) struct Symbolize(mpsc::Sender<Job>);

impl Symbolize {
    /// Queues `job`; `false` when the thread is gone.
    #[cfg_attr(not(taskscope_dumps), allow(dead_code))]
    pub(crate) fn send(&self, job: Job) -> bool {
        self.0.send(job).is_ok()
    }
}

/// Starts the probe's one symbolizer thread and sets stack sampling up: the capture for
/// the watchdog (or `None`, with the reason recorded for clients), and the symbolizer's
/// queue for dumps (`None` when its thread cannot start).
pub(crate) fn start(shared: &Arc<Shared>) -> (Option<Capture>, Option<Symbolize>) {
    let symbolize = start_symbolizer(shared);
    let capture = Capture::new(shared, symbolize.clone());
    (capture, symbolize.map(Symbolize))
}

/// Starts the probe's one symbolizer thread, which stall stacks and await-chain dumps
/// share (with its cache of debug info, loaded once); told to end when the probe stops.
fn start_symbolizer(shared: &Arc<Shared>) -> Option<mpsc::Sender<Job>> {
    let (symbolize, jobs) = mpsc::channel();
    let thread_shared = shared.clone();
    let started = std::thread::Builder::new()
        .name("taskscope-symbolizer".into())
        .spawn(move || {
            crate::base::quiet::quiet_forever();
            symbolize_loop(&thread_shared, jobs)
        });
    match started {
        Ok(thread) => {
            let stop = symbolize.clone();
            shared.own_thread_stopped_by(
                thread,
                Box::new(move || {
                    let _ = stop.send(Job::Stop);
                }),
            );
        }
        Err(e) => {
            crate::base::diag::warn(&format!("cannot start the symbolizer thread: {e}"));
            return None;
        }
    }
    Some(symbolize)
}

fn symbolize_loop(shared: &Shared, jobs: mpsc::Receiver<Job>) {
    let mut symbolizer = Symbolizer::new();
    let mut stacks: VecDeque<(StallKey, Seen)> = VecDeque::new();
    for job in jobs {
        match job {
            Job::Sample(sample) => symbolize_sample(shared, &mut symbolizer, &mut stacks, sample),
            Job::Stacks { stacks, reply } => {
                let resolved = stacks
                    .iter()
                    .map(|addresses| {
                        let frames = symbolizer.symbolize(addresses);
                        ResolvedStack {
                            innermost_user: taskscope_stack::innermost_user_frame(&frames),
                            frames: to_proto(&frames),
                        }
                    })
                    .collect();
                let _ = reply.send(resolved);
            }
            Job::Stop => return,
        }
    }
}

fn symbolize_sample(
    shared: &Shared,
    symbolizer: &mut Symbolizer,
    stacks: &mut VecDeque<(StallKey, Seen)>,
    job: RawSample,
) {
    let key = (job.thread, job.started_ns);
    let (sample, stack) = match job.addresses {
        Ok(addresses) => {
            let frames = symbolizer.symbolize(&addresses);
            let sample = v1::StackSample {
                at_ns: job.at_ns,
                frames: to_proto(&frames),
                error: String::new(),
            };
            (sample, frames)
        }
        Err(error) => {
            let sample = v1::StackSample {
                at_ns: job.at_ns,
                frames: Vec::new(),
                error,
            };
            (sample, Vec::new())
        }
    };
    if !stacks.iter().any(|(k, _)| *k == key) {
        if stacks.len() >= REMEMBERED_STALLS {
            stacks.pop_front();
        }
        stacks.push_back((key, Seen::default()));
    }
    let seen = &mut stacks
        .iter_mut()
        .find(|(k, _)| *k == key)
        .expect("inserted")
        .1;
    if !stack.is_empty() {
        seen.stacks.push(stack);
    }
    if let Some(sched) = job.sched {
        seen.sched.push((job.at_ns, sched));
    }
    let sent = shared.send(ProbeEvent::StallSamples {
        thread: job.thread,
        started_ns: job.started_ns,
        samples: vec![sample],
        activity: activity(seen),
    });
    shared.samples_in_flight.fetch_sub(1, Ordering::AcqRel);
    if sent {
        shared.urgent.notify_one();
    } else {
        shared.drops.stall_events.fetch_add(1, Ordering::Relaxed);
    }
}

/// Converts frames, marking those a report shows by default.
fn to_proto(frames: &[Frame]) -> Vec<v1::Frame> {
    let shown: HashSet<Frame> = taskscope_stack::user_frames(frames).into_iter().collect();
    frames
        .iter()
        .map(|frame| v1::Frame {
            function: frame.function.clone(),
            location: match (&frame.file, frame.line, frame.column) {
                (Some(file), Some(line), Some(column)) => format!("{file}:{line}:{column}"),
                (Some(file), Some(line), None) => format!("{file}:{line}"),
                (Some(file), None, _) => file.clone(),
                (None, ..) => String::new(),
            },
            address: frame.address as u64,
            user: shown.contains(frame),
        })
        .collect()
}

/// What the samples of one stall have shown so far.
#[derive(Default)]
struct Seen {
    stacks: Vec<Vec<Frame>>,
    /// (time into the poll, the thread's scheduler totals), per sample.
    sched: Vec<(u64, SchedStat)>,
}

/// Whether the thread was blocked or busy during one stall.
///
/// What the kernel says the thread did with its time says it best: a thread blocked in a
/// sleep, a read or a lock is neither running nor waiting for a CPU, a computing one is
/// always one or the other. Its time *runnable* (on a CPU, or waiting for one) is what
/// counts, not its CPU time alone: on a loaded machine a computing thread can get a tenth
/// of a CPU and wait the rest, and is still no blocking call. Only when that is unknown or
/// in between do the stacks decide: the same place in every sample is a blocking call.
/// Stacks alone can mistake a tight loop for a blocked thread when every sample lands on
/// the loop's same slow instruction.
fn activity(seen: &Seen) -> v1::Activity {
    if let (Some(&(first_at, first)), Some(&(last_at, last))) =
        (seen.sched.first(), seen.sched.last())
    {
        let wall = last_at.saturating_sub(first_at);
        let runnable =
            (last.cpu_ns + last.waiting_ns).saturating_sub(first.cpu_ns + first.waiting_ns);
        if wall > 0 {
            if runnable >= wall / 2 {
                return v1::Activity::Busy;
            }
            if runnable <= wall / 10 {
                return v1::Activity::Blocked;
            }
        }
    }
    match taskscope_stack::classify(&seen.stacks) {
        Some(Activity::Blocked) => v1::Activity::Blocked,
        Some(Activity::Busy) => v1::Activity::Busy,
        None => v1::Activity::Unknown,
    }
}

/// When to sample one stall.
pub(crate) struct Schedule {
    taken: u32,
    threshold_ns: u64,
}

impl Schedule {
    pub(crate) fn new(threshold_ns: u64) -> Self {
        Self {
            taken: 0,
            threshold_ns,
        }
    }

    /// Takes the sample due now, if any (at 1x, 2x and 4x the threshold into the poll).
    pub(crate) fn sample_if_due(
        &mut self,
        capture: &Capture,
        thread: u32,
        target: &Target,
        polling: Polling,
        now_ns: u64,
    ) {
        if self.taken >= SAMPLES_PER_STALL {
            return;
        }
        let elapsed = now_ns.saturating_sub(polling.started_ns);
        if elapsed < self.threshold_ns << self.taken {
            return;
        }
        self.taken += 1;
        capture.sample(thread, target, polling);
    }
}

#[cfg(test)]
mod activity_tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Samples at (time into the poll, CPU time, time waiting for a CPU).
    fn seen(samples: &[(u64, u64, u64)]) -> Seen {
        Seen {
            stacks: Vec::new(),
            sched: samples
                .iter()
                .map(|&(at, cpu_ns, waiting_ns)| (at, SchedStat { cpu_ns, waiting_ns }))
                .collect(),
        }
    }

    fn thread_cpu_ns(tid: i32) -> Option<u64> {
        schedstat::of_thread(tid as u64).map(|s| s.cpu_ns)
    }

    #[test]
    fn cpu_time_tells_busy_from_blocked() {
        assert_eq!(
            activity(&seen(&[
                (100 * MS, 0, 0),
                (200 * MS, 95 * MS, 0),
                (400 * MS, 290 * MS, 0)
            ])),
            v1::Activity::Busy
        );
        assert_eq!(
            activity(&seen(&[(100 * MS, 5 * MS, 0), (400 * MS, 6 * MS, MS)])),
            v1::Activity::Blocked
        );
    }

    /// A loop on a machine so loaded that it ran a twentieth of the time and waited for a
    /// CPU the rest: computing, not blocked in a call (it was never asleep).
    #[test]
    fn a_computing_thread_starved_of_cpu_is_busy_not_blocked() {
        assert_eq!(
            activity(&seen(&[(100 * MS, 0, 0), (400 * MS, 15 * MS, 270 * MS)])),
            v1::Activity::Busy
        );
    }

    #[test]
    fn in_between_or_unknown_time_leaves_it_to_the_stacks() {
        // Runnable a third of the time: neither clearly; no stacks either, so unknown.
        assert_eq!(
            activity(&seen(&[(0, 0, 0), (100 * MS, 20 * MS, 10 * MS)])),
            v1::Activity::Unknown
        );
        assert_eq!(activity(&seen(&[(100 * MS, 0, 0)])), v1::Activity::Unknown);
    }

    #[test]
    fn the_cpu_time_of_a_spinning_thread_grows() {
        let (tid_sender, tid) = std::sync::mpsc::channel();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spinning = stop.clone();
        let spinner = std::thread::spawn(move || {
            tid_sender.send(Sampler::current_thread().tid()).unwrap();
            while !spinning.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        let tid = tid.recv().unwrap();
        let Some(before) = thread_cpu_ns(tid) else {
            stop.store(true, Ordering::Relaxed);
            spinner.join().unwrap();
            return; // no schedstat on this platform
        };
        std::thread::sleep(Duration::from_millis(100));
        let after = thread_cpu_ns(tid).unwrap();
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        assert!(after - before >= 10 * MS, "{before} -> {after}");
    }
}
