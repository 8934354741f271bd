//! What the kernel says a thread did with its time: running on a CPU, or runnable but
//! waiting for one (Linux: `/proc/.../schedstat`).
//!
//! A stall measures wall time. On an overloaded machine (a CI runner running tests side
//! by side) a thread can wait for a CPU for longer than the stall threshold in the middle
//! of a poll that would have been quick: that stall is the machine's, not the code's, and
//! the time the thread spent waiting for a CPU tells the two apart.
//!
//! That wait must be measured over the whole poll, not over the part after the stall was
//! seen: the share of waiting changes within a poll (busy neighbours come and go), and
//! taking one part's share for the whole makes the same program's verdict flip from run
//! to run. Reading the totals at every poll's start would cost every poll a system call;
//! instead the watchdog reads every polling thread's totals at each of its scans
//! ([`Sampler`], a `pread` of a file kept open) and estimates them at the start of each
//! poll it sees from the readings just before and just after, within one scan period
//! ([`PollStarts`]). A thread reads its own totals once as it registers with the probe
//! (the reading before its first poll) and when a poll past the threshold returns.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

/// A thread's scheduler totals at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SchedStat {
    /// Time spent running, in ns.
    pub(crate) cpu_ns: u64,
    /// Time spent runnable but waiting for a CPU, in ns.
    pub(crate) waiting_ns: u64,
}

/// Thread `tid` of this process.
pub(crate) fn of_thread(tid: u64) -> Option<SchedStat> {
    read(&format!("/proc/self/task/{tid}/schedstat"))
}

/// The calling thread.
pub(crate) fn of_this_thread() -> Option<SchedStat> {
    read("/proc/thread-self/schedstat")
}

fn read(path: &str) -> Option<SchedStat> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    parse(&std::fs::read_to_string(path).ok()?)
}

fn parse(text: &str) -> Option<SchedStat> {
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    Some(SchedStat {
        cpu_ns: fields.next()?.ok()?,
        waiting_ns: fields.next()?.ok()?,
    })
}

/// A thread's scheduler totals over a stretch of a poll: at `from_ns`, and at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) from_ns: u64,
    pub(crate) from: SchedStat,
    pub(crate) to: SchedStat,
}

/// A thread's totals estimated at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    pub(crate) at_ns: u64,
    pub(crate) stat: SchedStat,
}

/// The totals at `at_ns`, between the readings `before` and `after`, assuming the thread's
/// time went at an even pace between them (which errs by less than their distance); a
/// reading itself when `at_ns` is not between them.
fn between(before: Reading, after: Reading, at_ns: u64) -> Reading {
    if at_ns <= before.at_ns || after.at_ns <= before.at_ns {
        return before;
    }
    if at_ns >= after.at_ns {
        return after;
    }
    let part = |from: u64, to: u64| {
        let span = u128::from(after.at_ns - before.at_ns);
        let gone = u128::from(at_ns - before.at_ns);
        from + (u128::from(to.saturating_sub(from)) * gone / span) as u64
    };
    Reading {
        at_ns,
        stat: SchedStat {
            cpu_ns: part(before.stat.cpu_ns, after.stat.cpu_ns),
            waiting_ns: part(before.stat.waiting_ns, after.stat.waiting_ns),
        },
    }
}

/// What the watchdog knows of each polling thread's totals, for the thread to report when
/// a poll turns out to be a stall: the totals estimated at the start of its current poll,
/// and its latest reading. Written by the watchdog, read by the thread; the lock is held
/// for one map operation.
#[derive(Debug, Default)]
pub(crate) struct PollStarts(Mutex<HashMap<u32, Known>>);

#[derive(Debug, Default)]
struct Known {
    /// The start of the poll (as the probe's clock has it), and the totals then.
    start: Option<(u64, Reading)>,
    latest: Option<Reading>,
}

impl PollStarts {
    fn set(&self, thread: u32, started_ns: u64, start: Reading) {
        lock(&self.0).entry(thread).or_default().start = Some((started_ns, start));
    }

    fn set_latest(&self, thread: u32, latest: Reading) {
        lock(&self.0).entry(thread).or_default().latest = Some(latest);
    }

    /// The totals at the start of `thread`'s poll that started at `started_ns`, whose end
    /// is `end`: as estimated when the watchdog saw the poll, or else (a watchdog held up
    /// past the whole poll by a busy machine) from its last reading before the poll and
    /// `end`. Taken once.
    pub(crate) fn take(&self, thread: u32, started_ns: u64, end: Reading) -> Option<Reading> {
        let mut known = lock(&self.0);
        let known = known.get_mut(&thread)?;
        match known.start {
            Some((started, start)) if started == started_ns => {
                known.start = None;
                Some(start)
            }
            _ => known
                .latest
                .filter(|latest| latest.at_ns <= started_ns)
                .map(|latest| between(latest, end, started_ns)),
        }
    }
}

/// Each thread's totals as it registered, until the watchdog first reads the thread
/// itself: a thread's first poll often starts right after its registration, before any
/// scan, and would otherwise have no reading before it. Global because a thread registers
/// from inside a hook, which carries no context (`threads.rs`).
static REGISTERED: Mutex<Vec<(u32, Reading)>> = Mutex::new(Vec::new());

/// The calling thread, number `number`, has just registered (once in its life).
pub(crate) fn thread_registered(number: u32) {
    let at_ns = crate::base::clock::now_ns();
    if let Some(stat) = of_this_thread() {
        lock(&REGISTERED).push((number, Reading { at_ns, stat }));
    }
}

/// Takes thread `number`'s reading at its registration, if still there.
fn registration(number: u32) -> Option<Reading> {
    let mut registered = lock(&REGISTERED);
    let at = registered.iter().position(|(n, _)| *n == number)?;
    Some(registered.swap_remove(at).1)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One thread as the watchdog last read it.
struct Sampled {
    file: std::fs::File,
    last: Reading,
    /// When the poll the last reading saw started.
    polling_since: Option<u64>,
}

/// The watchdog's readings of the threads' totals, one per scan, from a thread's first
/// poll seen on (threads that never poll a task that can stall, such as the blocking
/// pool's, are never read).
#[derive(Default)]
pub(crate) struct Sampler {
    threads: HashMap<u32, Sampled>,
}

impl Sampler {
    /// Reads thread `number`'s (OS thread `os_tid`) totals at `now_ns`, when it shows a
    /// poll started at `polling_since` (none when idle). A poll seen for the first time
    /// gets the totals at its start estimated into `starts`.
    pub(crate) fn sample(
        &mut self,
        number: u32,
        os_tid: u64,
        polling_since: Option<u64>,
        now_ns: u64,
        starts: &PollStarts,
    ) {
        let sampled = match self.threads.entry(number) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let Some(started_ns) = polling_since else {
                    return;
                };
                let Some(file) = open(os_tid) else { return };
                let Some(stat) = pread(&file) else { return };
                let last = Reading {
                    at_ns: now_ns,
                    stat,
                };
                // The reading as the thread registered comes before this poll; without
                // one, the poll's first part goes unmeasured.
                let before = registration(number).unwrap_or(last);
                starts.set(number, started_ns, between(before, last, started_ns));
                entry.insert(Sampled {
                    file,
                    last,
                    polling_since,
                });
                return;
            }
        };
        let Some(stat) = pread(&sampled.file) else {
            return;
        };
        let now = Reading {
            at_ns: now_ns,
            stat,
        };
        starts.set_latest(number, now);
        if let Some(started_ns) = polling_since
            && sampled.polling_since != polling_since
        {
            starts.set(number, started_ns, between(sampled.last, now, started_ns));
        }
        sampled.polling_since = polling_since;
        sampled.last = now;
    }

    /// Forgets the threads that have exited (closing their files).
    pub(crate) fn forget(&mut self, exited: impl Fn(u32) -> bool) {
        self.threads.retain(|number, _| !exited(*number));
        lock(&REGISTERED).retain(|(number, _)| !exited(*number));
    }
}

fn open(tid: u64) -> Option<std::fs::File> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    std::fs::File::open(format!("/proc/self/task/{tid}/schedstat")).ok()
}

/// The file's current contents: reading from offset 0 makes the kernel write them anew.
#[cfg(unix)]
fn pread(file: &std::fs::File) -> Option<SchedStat> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 96];
    let len = file.read_at(&mut buf, 0).ok()?;
    parse(std::str::from_utf8(&buf[..len]).ok()?)
}

#[cfg(not(unix))]
fn pread(_: &std::fs::File) -> Option<SchedStat> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(at_ns: u64, cpu_ns: u64, waiting_ns: u64) -> Reading {
        Reading {
            at_ns,
            stat: SchedStat { cpu_ns, waiting_ns },
        }
    }

    #[test]
    fn the_totals_at_a_polls_start_lie_between_the_readings_around_it() {
        let (before, after) = (reading(100, 1_000, 0), reading(200, 1_060, 40));
        assert_eq!(between(before, after, 150), reading(150, 1_030, 20));
        assert_eq!(
            between(before, after, 50),
            before,
            "never before the first reading"
        );
        assert_eq!(between(before, after, 250), after);
    }

    fn spin(for_ms: u64) {
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(for_ms) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }

    /// This thread's totals now.
    fn end() -> Reading {
        Reading {
            at_ns: crate::base::clock::now_ns(),
            stat: of_this_thread().unwrap(),
        }
    }

    #[test]
    fn the_sampler_estimates_the_start_of_each_new_poll_for_its_thread() {
        if of_this_thread().is_none() {
            return; // no schedstat on this platform
        }
        // SAFETY: gettid has no preconditions.
        let (number, os_tid) = (u32::MAX, unsafe { libc::gettid() } as u64);
        thread_registered(number);
        let (starts, mut sampler) = (PollStarts::default(), Sampler::default());
        let mut sample = |since: u64| {
            let now = crate::base::clock::now_ns();
            sampler.sample(number, os_tid, Some(since), now, &starts);
        };
        let first = crate::base::clock::now_ns();
        sample(first);
        let seen = starts.take(number, first, end()).unwrap();
        assert_eq!(
            seen.at_ns, first,
            "the first poll's start lies between the thread's registration and the scan"
        );
        spin(20);
        let second = crate::base::clock::now_ns();
        spin(20);
        sample(second);
        assert_eq!(starts.take(number, first, end()), None);
        let start = starts.take(number, second, end()).unwrap();
        assert_eq!(start.at_ns, second);
        let now = of_this_thread().unwrap();
        assert!(seen.stat.cpu_ns < start.stat.cpu_ns && start.stat.cpu_ns < now.cpu_ns);
        assert_eq!(starts.take(number, second, end()), None, "taken once");
    }

    #[test]
    fn a_poll_the_watchdog_never_saw_starts_between_its_last_reading_and_the_end() {
        let starts = PollStarts::default();
        starts.set_latest(3, reading(100, 1_000, 0));
        let start = starts.take(3, 150, reading(200, 1_010, 90));
        assert_eq!(start, Some(reading(150, 1_005, 45)));
        assert_eq!(
            starts.take(3, 50, reading(200, 1_010, 90)),
            None,
            "before it"
        );
        assert_eq!(starts.take(4, 150, reading(200, 1_010, 90)), None);
    }

    #[test]
    fn a_thread_that_computes_gains_cpu_time() {
        let Some(before) = of_this_thread() else {
            return; // no schedstat on this platform
        };
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = of_this_thread().unwrap();
        assert!(after.cpu_ns > before.cpu_ns, "{before:?} {after:?}");
        assert!(after.waiting_ns >= before.waiting_ns);
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u64;
        assert!(of_thread(tid).is_some());
    }
}
