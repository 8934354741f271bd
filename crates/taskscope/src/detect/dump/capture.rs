//! Taking one tokio task dump and keeping only its code addresses.
//!
//! `Handle::dump` pauses the runtime's workers and re-polls every task in a tracing mode in
//! which each leaf future (a channel's `recv`, a `sleep`, a socket read) records a
//! backtrace up to the task's root instead of doing its work. tokio offers the backtraces
//! only resolved by the `backtrace` crate, which would load the binary's debug info a second
//! time, into the app's memory, for the life of the process. The probe's symbolizer already
//! holds that debug info for stall stacks, so the addresses are read from the trace's
//! `Debug` form instead (the `backtrace` crate prints an unresolved frame as
//! `BacktraceFrame { ip: 0x…, symbol_address: 0x… }`; `format_is_understood` below fails
//! the build's tests the day that changes).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};

use super::safety;
use crate::tasks::threads;

/// A dump reduced to addresses, with identical backtraces stored once.
#[derive(Debug, Default)]
pub(crate) struct RawDump {
    /// Distinct backtraces, innermost first, each address inside its call instruction.
    pub(crate) leaves: Vec<Vec<usize>>,
    /// Per task: its tokio id and the indexes of its leaves.
    pub(crate) chains: Vec<(u64, Vec<u32>)>,
    /// How long the dump held the runtime.
    pub(crate) pause: Duration,
}

impl RawDump {
    /// Adds another runtime's dump to this one.
    pub(crate) fn absorb(&mut self, other: RawDump) {
        let offset = self.leaves.len() as u32;
        self.leaves.extend(other.leaves);
        self.chains.extend(
            other
                .chains
                .into_iter()
                .map(|(task, leaves)| (task, leaves.into_iter().map(|i| i + offset).collect())),
        );
        self.pause += other.pause;
    }
}

/// How long past its deadline a current-thread runtime's dump task may take to answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(1);

/// A worker whose poll has lasted this long is stalled: the workers could not all pause.
const STALLED_AFTER: Duration = Duration::from_millis(100);

/// Takes a dump of the runtime behind `handle`, or says why it could not or must not
/// ([`safety`], [`canary`](super::canary)).
pub(crate) async fn take(handle: &Handle, timeout: Duration) -> Result<RawDump, String> {
    super::canary::verdict()?;
    if let Some(stalled) = stalled_worker() {
        return Err(stalled);
    }
    if let Some(over) = safety::over_budget(handle) {
        return Err(over);
    }
    let deadline = Instant::now() + timeout;
    let (dump, pause) = match handle.runtime_flavor() {
        RuntimeFlavor::MultiThread => {
            if let Some(refusal) = safety::multi_thread_refusal(handle).await {
                return Err(refusal);
            }
            let started = Instant::now();
            let _dumping = crate::tasks::dumping::Dumping::start();
            let dump = tokio::time::timeout(timeout, handle.dump())
                .await
                .map_err(|_| not_answered(timeout))?;
            (dump, started.elapsed())
        }
        _ if is_current(handle) => here(handle, deadline).await?,
        _ => from_inside(handle, timeout, deadline).await?,
    };
    let mut raw = reduce(&dump);
    raw.pause = pause;
    safety::record_pause(raw.chains.len(), pause);
    Ok(raw)
}

/// Dumps the current-thread runtime this poll runs on, at a moment its run queues are
/// empty; returns the dump and how long it held the runtime.
async fn here(
    handle: &Handle,
    deadline: Instant,
) -> Result<(tokio::runtime::Dump, Duration), String> {
    safety::until_queues_empty(handle, deadline).await?;
    let started = Instant::now();
    let _dumping = crate::tasks::dumping::Dumping::start();
    // The poll this runs in (the body of `main` at shutdown) is left for the dump: its
    // time is the probe's, never the app's stall.
    let paused = threads::with_local(|l| l.pause_polls(crate::base::clock::now_ns())).flatten();
    // Synchronous on a current-thread runtime: no other poll comes between the check of
    // the queues above and the dump.
    let dump = handle.dump().await;
    if let Some(since) = paused {
        threads::with_local(|l| l.resume_polls(since, crate::base::clock::now_ns()));
    }
    Ok((dump, started.elapsed()))
}

fn not_answered(timeout: Duration) -> String {
    format!(
        "the runtime did not pause for the dump within {} ms: a worker is blocked, or the \
         runtime has shut down",
        timeout.as_millis()
    )
}

fn is_current(handle: &Handle) -> bool {
    Handle::try_current().is_ok_and(|current| current.id() == handle.id())
}

/// A current-thread runtime can only be dumped from one of its own tasks: a throw-away
/// task spawned from the probe's (quiet) thread, so not one of the app's. It gives up by
/// itself at `deadline`.
async fn from_inside(
    handle: &Handle,
    timeout: Duration,
    deadline: Instant,
) -> Result<(tokio::runtime::Dump, Duration), String> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    // Detached: its answer comes through `reply`.
    drop(handle.spawn(async move {
        let handle = Handle::current();
        let _ = reply.send(here(&handle, deadline).await);
    }));
    // The task gives up by itself at `deadline` and says why; this only covers a thread
    // that never runs it at all.
    match tokio::time::timeout(timeout + ANSWER_MARGIN, answer).await {
        Ok(Ok(dumped)) => dumped,
        Ok(Err(_)) => Err("the runtime has shut down".to_owned()),
        Err(_) => Err(format!(
            "the runtime's thread did not run the dump within {} ms: it is busy or blocked \
             outside its tasks",
            timeout.as_millis()
        )),
    }
}

/// A thread stuck in a long poll keeps the others waiting at the dump's barrier: say so
/// rather than hold the whole runtime (its stall report has the stack).
fn stalled_worker() -> Option<String> {
    let now_ns = crate::base::clock::now_ns();
    let limit_ns = STALLED_AFTER.as_nanos() as u64;
    threads::all().iter().find_map(|slot| {
        let polling = slot.read()?;
        let held_ns = now_ns.saturating_sub(polling.started_ns);
        (held_ns >= limit_ns).then(|| {
            format!(
                "thread {} is stalled in task {} ({} ms into one poll), so the runtime cannot \
                 pause for a dump; the stall's stack shows where it is",
                slot.number,
                polling.task,
                held_ns / 1_000_000
            )
        })
    })
}

fn reduce(dump: &tokio::runtime::Dump) -> RawDump {
    let mut raw = RawDump::default();
    let mut known: HashMap<Vec<usize>, u32> = HashMap::new();
    for task in dump.tasks().iter() {
        let leaves = backtraces(&format!("{:?}", task.trace()))
            .into_iter()
            .map(|leaf| {
                *known.entry(leaf).or_insert_with_key(|leaf| {
                    raw.leaves.push(leaf.clone());
                    (raw.leaves.len() - 1) as u32
                })
            })
            .collect();
        raw.chains
            .push((crate::tasks::task_table::task_id(task.id()), leaves));
    }
    raw
}

/// The backtraces of a trace's `Debug` form: the `ip`s of each `[...]` list of frames,
/// each made to point inside its call instruction (return address minus one), as the
/// symbolizer expects.
fn backtraces(debug: &str) -> Vec<Vec<usize>> {
    let Some(start) = debug.find("backtraces: [") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut current: Option<Vec<usize>> = None;
    let mut text = &debug[start + "backtraces: [".len()..];
    while let Some(at) = text.find(['[', ']', 'i']) {
        let tail = &text[at..];
        text = match tail.as_bytes()[0] {
            b'[' => {
                current = Some(Vec::new());
                &tail[1..]
            }
            b']' => {
                match current.take() {
                    Some(leaf) => out.push(leaf),
                    // The end of the list of backtraces.
                    None => break,
                }
                &tail[1..]
            }
            _ => match tail.strip_prefix("ip: 0x") {
                Some(hex) => {
                    let end = hex
                        .find(|c: char| !c.is_ascii_hexdigit())
                        .unwrap_or(hex.len());
                    if let (Some(leaf), Ok(ip)) =
                        (current.as_mut(), usize::from_str_radix(&hex[..end], 16))
                    {
                        leaf.push(ip.saturating_sub(1));
                    }
                    &hex[end..]
                }
                None => &tail[1..],
            },
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backtraces_are_read_from_the_debug_form() {
        let debug = "Trace { inner: Trace { backtraces: [[BacktraceFrame { ip: 0x10, \
                     symbol_address: 0x8 }, BacktraceFrame { ip: 0x2a, symbol_address: 0x20 }], \
                     [BacktraceFrame { ip: 0x100, symbol_address: 0xf0 }]] } }";
        assert_eq!(backtraces(debug), vec![vec![0xf, 0x29], vec![0xff]]);
        assert!(backtraces("Trace { inner: Trace { backtraces: [] } }").is_empty());
        assert!(backtraces("something else").is_empty());
    }

    /// Pins the `Debug` form this module reads: a real dump of a task parked on a channel
    /// has one backtrace of several frames.
    #[test]
    fn format_is_understood() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let raw = runtime.block_on(async {
            let (_tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
            let parked = tokio::spawn(async move { rx.recv().await });
            tokio::task::yield_now().await;
            let raw = take(&Handle::current(), Duration::from_secs(5)).await;
            parked.abort();
            raw
        });
        let raw = raw.expect("a dump");
        assert_eq!(raw.chains.len(), 1, "{raw:?}");
        let leaves = &raw.chains[0].1;
        assert_eq!(leaves.len(), 1, "{raw:?}");
        assert!(raw.leaves[leaves[0] as usize].len() >= 2, "{raw:?}");
    }
}
