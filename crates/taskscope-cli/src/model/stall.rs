//! Stalls: polls that kept a worker thread past the probe's threshold.

use taskscope_api::v1;

/// Whether the stalled poll is still running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Still running at the last word from the probe (its duration is "so far").
    Ongoing,
    /// The poll returned; the duration is final.
    Ended,
}

/// What the samples of a stall say the thread was doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activity {
    /// Fewer than two samples, or no stacks.
    Unknown,
    /// The same place in every sample: waiting in a blocking call.
    Blocked,
    /// Somewhere different each time: computing.
    Busy,
}

impl Activity {
    fn from_wire(activity: i32) -> Self {
        match v1::Activity::try_from(activity) {
            Ok(v1::Activity::Blocked) => Self::Blocked,
            Ok(v1::Activity::Busy) => Self::Busy,
            Ok(v1::Activity::Unknown) | Err(_) => Self::Unknown,
        }
    }
}

/// One frame of a captured stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) function: Box<str>,
    /// `file:line[:col]`, when known.
    pub(crate) location: Option<Box<str>>,
    /// Marked by the probe as worth showing: the user's own frames and the innermost
    /// library call they made (the one that blocks); not runtime machinery.
    pub(crate) user: bool,
}

impl Frame {
    pub(crate) fn from_wire(frame: &v1::Frame) -> Self {
        Self {
            function: frame.function.as_str().into(),
            location: (!frame.location.is_empty()).then(|| frame.location.as_str().into()),
            user: frame.user,
        }
    }
}

/// One stall, as last reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stall {
    pub(crate) stall_id: u64,
    pub(crate) task_id: u64,
    /// Thread number of the stalled thread.
    pub(crate) thread: u32,
    pub(crate) poll_started_ns: u64,
    /// Duration so far, final when [`Phase::Ended`].
    pub(crate) duration_ns: u64,
    pub(crate) phase: Phase,
    pub(crate) activity: Activity,
    /// The latest captured stack, innermost frame first; empty when none was captured.
    pub(crate) stack: Vec<Frame>,
    /// Of the wall time measured over the poll (from its start, or a little later, to its
    /// end), how much the thread spent waiting for a CPU: (measured, waiting), when the
    /// probe told.
    pub(crate) cpu_wait: Option<(u64, u64)>,
    /// Of the duration, the probe's own time inside the poll (its hooks nested in it).
    pub(crate) probe_ns: u64,
    /// Of `probe_ns`, the stretches the probe also timed in the thread's CPU time: (their
    /// wall time, their CPU time).
    pub(crate) probe_exact: (u64, u64),
    /// What every thread did around it, from its flight-recorder window, once it ended.
    pub(crate) lanes: Option<std::sync::Arc<crate::model::lanes::Lanes>>,
}

/// A poll's running time, split between the app's code and the probe's hooks.
struct Split {
    app_ns: u64,
    probe_cpu_ns: u64,
}

/// Who held a thread through a poll that took longer than the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeldBy {
    /// The app's own code: a stall.
    App,
    /// The machine: the thread waited for a CPU for long enough that the poll, quick on
    /// its own, passed the threshold.
    Machine,
    /// The probe: its own hooks inside the poll (a debug build's spawn hooks, one per task
    /// the poll spawned), or the slowdown they cause the app's code around them, are what
    /// took the poll past the threshold.
    Probe,
}

impl Stall {
    /// The poll's own time: its duration without the probe's time in it and without the
    /// time its thread waited for a CPU.
    pub(crate) fn app_ns(&self) -> u64 {
        self.split().app_ns
    }

    /// The CPU time the probe's own hooks ran inside the poll.
    pub(crate) fn probe_cpu_ns(&self) -> u64 {
        self.split().probe_cpu_ns
    }

    /// The poll's own time as judged against the threshold: [`Stall::app_ns`] less half
    /// the probe's CPU time in the poll. The probe's work slows the app's code around it
    /// (the caches it fills, the allocator and the page faults of the memory it adds): in
    /// a debug build spawning 25,000 tasks in one poll on a loaded machine, the app's code
    /// ran up to 0.45 times the probe's own CPU time longer than without the probe
    /// (docs/performance.md). That slowdown is the probe's doing, not the app's, and it
    /// cannot be measured per poll; half the probe's time bounds it. A poll in which the
    /// probe ran little, as in almost every poll, is judged on its own time.
    pub(crate) fn judged_ns(&self) -> u64 {
        let split = self.split();
        split.app_ns.saturating_sub(split.probe_cpu_ns / 2)
    }

    /// The poll's time split between the app and the probe, waits for a CPU left out. The
    /// wait is measured over the poll, not per stretch: the probe's stretches it timed in
    /// CPU time too (those late in a long poll) say exactly how much of it fell in them;
    /// the rest of the wait is shared between the app's stretches and the probe's others
    /// in proportion. A part of the poll left unmeasured counts as the app's.
    fn split(&self) -> Split {
        let duration = self.duration_ns;
        let probe = self.probe_ns.min(duration);
        let exact_wall = self.probe_exact.0.min(probe);
        let exact_cpu = self.probe_exact.1.min(exact_wall);
        let waiting = self
            .cpu_wait
            .map_or(0, |(measured, waiting)| waiting.min(measured).min(duration));
        // The poll outside the exactly timed stretches, and its share of the wait.
        let rest = duration - exact_wall;
        if rest == 0 {
            return Split {
                app_ns: 0,
                probe_cpu_ns: exact_cpu,
            };
        }
        let rest_waiting = waiting.saturating_sub(exact_wall - exact_cpu).min(rest);
        let running = |wall: u64| {
            (u128::from(wall) * u128::from(rest - rest_waiting) / u128::from(rest)) as u64
        };
        Split {
            app_ns: running(rest - (probe - exact_wall)),
            probe_cpu_ns: exact_cpu + running(probe - exact_wall),
        }
    }

    /// Who held the thread through this poll, for a threshold of `threshold_ns`: the app
    /// unless the poll's own time, as judged, stays under it. A long computation on a busy
    /// machine stays a stall.
    pub(crate) fn held_by(&self, threshold_ns: u64) -> HeldBy {
        if self.judged_ns() >= threshold_ns {
            HeldBy::App
        } else if self.app_ns() >= threshold_ns
            || self.duration_ns.saturating_sub(self.probe_ns) < threshold_ns
        {
            HeldBy::Probe
        } else {
            HeldBy::Machine
        }
    }

    pub(crate) fn from_wire(stall: &v1::Stall) -> Self {
        let mut this = Self {
            stall_id: stall.stall_id,
            task_id: stall.task_id,
            thread: stall.thread,
            poll_started_ns: stall.poll_started_ns,
            duration_ns: stall.duration_ns,
            phase: Phase::Ongoing,
            activity: Activity::Unknown,
            stack: Vec::new(),
            cpu_wait: None,
            probe_ns: 0,
            probe_exact: (0, 0),
            lanes: None,
        };
        this.update(stall);
        this
    }

    /// Applies a later report of the same stall. Facts only move forward: an ended stall
    /// stays ended, a duration never shrinks, and the stack shown is the first one
    /// captured ([`taskscope_api::stall::telling_sample`] says why).
    pub(crate) fn update(&mut self, stall: &v1::Stall) {
        if stall.phase == v1::StallPhase::Ended as i32 {
            self.phase = Phase::Ended;
            self.duration_ns = stall.duration_ns;
            if stall.measured_ns > 0 {
                self.cpu_wait = Some((stall.measured_ns, stall.waiting_for_cpu_ns));
            }
            self.probe_ns = stall.probe_ns;
            self.probe_exact = (stall.probe_exact_wall_ns, stall.probe_cpu_ns);
        } else if self.phase == Phase::Ongoing {
            self.duration_ns = self.duration_ns.max(stall.duration_ns);
        }
        let activity = Activity::from_wire(stall.activity);
        if activity != Activity::Unknown {
            self.activity = activity;
        }
        if self.lanes.is_none() && stall.flight.is_some() {
            self.lanes = crate::model::lanes::Lanes::of(stall).map(std::sync::Arc::new);
        }
        if self.stack.is_empty()
            && let Some(sample) = taskscope_api::stall::telling_sample(stall)
        {
            self.stack = sample.frames.iter().map(Frame::from_wire).collect();
        }
    }

    /// Duration at `now_ns`: a stall still going on keeps growing between reports.
    pub(crate) fn duration_at(&self, now_ns: u64) -> u64 {
        match self.phase {
            Phase::Ended => self.duration_ns,
            Phase::Ongoing => self
                .duration_ns
                .max(now_ns.saturating_sub(self.poll_started_ns)),
        }
    }
}

/// The frames a report shows, innermost first: those the probe marked (the user's own
/// frames and the innermost library call they made, e.g. `std::thread::sleep`), less
/// the toolchain's frames outside that call (libtest's runner, which calls every test). A
/// stack without marks (an older probe) is shown from its innermost frame in the user's
/// code. The frames left out are the runtime's machinery and the standard library's
/// insides: `check`'s reports and the dashboard fold them the same way.
/// The line in the app's own code where a stalled thread was: the innermost shown frame
/// in the user's code. That is the caller of the blocking library call when the thread
/// was inside one (`std::thread::sleep`), and the innermost frame itself when the app's
/// code was computing. Without a frame in the user's code, the first located frame past
/// the innermost one (the blocking call itself).
pub(crate) fn blocking_line(shown: &[Frame]) -> Option<&str> {
    let located = shown.iter().filter_map(|f| f.location.as_deref());
    located
        .clone()
        .find(|location| is_user_location(location))
        .or_else(|| {
            shown
                .iter()
                .skip(usize::from(shown.len() > 1))
                .find_map(|f| f.location.as_deref())
        })
}

pub(crate) fn shown_frames(stack: &[Frame]) -> Vec<Frame> {
    if stack.iter().any(|frame| frame.user) {
        stack
            .iter()
            .filter(|frame| frame.user)
            .enumerate()
            .filter(|(index, frame)| *index == 0 || !in_toolchain(frame))
            .map(|(_, frame)| frame.clone())
            .collect()
    } else {
        from_innermost_user_frame(stack)
    }
}

/// A frame of the Rust toolchain's own libraries (std, libtest), by its source path.
fn in_toolchain(frame: &Frame) -> bool {
    frame
        .location
        .as_deref()
        .is_some_and(|location| location.contains("/rustc/") || location.contains("/rustlib/"))
}

/// The stack from the innermost frame in the user's code outwards: the frames inside the
/// standard library or a dependency before it (`nanosleep`, `thread::sleep`) say *how* it
/// blocked, which the message names, but the user's frame is where to fix it.
fn from_innermost_user_frame(stack: &[Frame]) -> Vec<Frame> {
    let start = stack
        .iter()
        .position(|frame| frame.location.as_deref().is_some_and(is_user_location))
        .unwrap_or(0);
    stack[start..].to_vec()
}

/// Whether a source path belongs to the user's code rather than the standard library, a
/// registry dependency or a toolchain: the frames worth pointing a reviewer at.
pub(crate) fn is_user_location(location: &str) -> bool {
    const FOREIGN: [&str; 7] = [
        "/rustc/",
        "/.cargo/registry/",
        "/.cargo/git/",
        "/rustlib/",
        "/library/std/",
        "/library/core/",
        "/library/alloc/",
    ];
    !location.is_empty()
        && !location.starts_with('<')
        && !FOREIGN.iter().any(|foreign| location.contains(foreign))
}
