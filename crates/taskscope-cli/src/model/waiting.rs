//! Await chains: where each task was waiting, from the probe's task dumps.
//!
//! A dump says, for every task it reached, which leaf futures the task was parked on and
//! the chain of `.await`s above each. The model keeps each task's latest chain (a later
//! dump replaces an earlier one) and the facts of the latest dump, so that a view can say
//! how old a chain is and a report can say why there is none.

use std::collections::HashMap;
use std::sync::Arc;

use taskscope_api::v1;

use super::stall::Frame;

/// Where a task a dump reached waits when its chain has no leaf: tokio's trace records a
/// backtrace only at the leaf futures it marks, and the task's poll reached none. Said by
/// `check`'s note and the dashboard's task details.
pub(crate) const NO_TOKIO_LEAF: &str = "parked on no future tokio's trace marks: a future \
     outside tokio, children of a FuturesUnordered or JoinSet that have not woken (only \
     woken children are polled), or an I/O wait tokio leaves unmarked (TcpListener::accept, \
     a socket's readable() and the other waits built on its async_io; the poll_* methods, \
     such as poll_accept, are marked, at Registration::poll_ready)";

/// Why a chain with frames has none of the user's: tokio's trace of a task stops at the
/// physical frame of its `Root::poll` and drops that frame, and in a release build the
/// task's own future (every `async fn` down to the `.await`) is inlined into it, so only
/// the leaf's frames inside tokio are left. No debug-info setting brings them back. Said
/// by `check`'s text report and the dashboard's task details.
pub(crate) const NO_USER_AWAIT: &str = "no `.await` of yours is in the chain: a release \
     build inlines the task's own future into tokio's task harness (`Root::poll`), the frame \
     tokio's trace stops at and leaves out; a debug build names the `.await` (e.g. \
     `taskscope check -- cargo test`); a task spawned as a tokio future itself \
     (`spawn(sleep(..))`) waits at its spawn line";

/// Why a dump was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// A client asked.
    Requested,
    /// A runtime taskscope drives was shutting down with tasks alive.
    Shutdown,
    /// Tasks went idle (`check` on a route that cannot dump at shutdown).
    Idle,
    Unknown,
}

impl Trigger {
    fn from_wire(trigger: i32) -> Self {
        match v1::DumpTrigger::try_from(trigger) {
            Ok(v1::DumpTrigger::Requested) => Self::Requested,
            Ok(v1::DumpTrigger::Shutdown) => Self::Shutdown,
            Ok(v1::DumpTrigger::Idle) => Self::Idle,
            Ok(v1::DumpTrigger::Unspecified) | Err(_) => Self::Unknown,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Shutdown => "at shutdown",
            Self::Idle => "when tasks went idle",
            Self::Unknown => "",
        }
    }
}

/// The backtrace of one leaf future a task waited on, innermost frame first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leaf {
    pub(crate) frames: Vec<Frame>,
    /// Position in `frames` of the innermost frame in the user's own code: the `.await`.
    pub(crate) await_frame: Option<usize>,
}

impl Leaf {
    /// The `.await` in the user's code this leaf is parked on.
    pub(crate) fn await_point(&self) -> Option<&Frame> {
        self.await_frame.and_then(|i| self.frames.get(i))
    }

    /// What the user's code awaited there (e.g. `tokio::sync::mpsc::Receiver::recv`),
    /// when there is one.
    pub(crate) fn awaited_call(&self) -> Option<&Frame> {
        super::names::awaited_call(&self.frames, self.await_frame?)
    }
}

/// Where one task was waiting at one dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chain {
    /// Probe time of the dump.
    pub(crate) taken_ns: u64,
    pub(crate) trigger: Trigger,
    /// Shared by every task parked on the same backtrace.
    pub(crate) leaves: Vec<Arc<Leaf>>,
}

impl Chain {
    /// The first `.await` in user code over all leaves: what a one-line report names.
    pub(crate) fn await_point(&self) -> Option<(&Leaf, &Frame)> {
        self.leaves
            .iter()
            .find_map(|leaf| leaf.await_point().map(|frame| (&**leaf, frame)))
    }

    /// What a report shows of the chain, innermost first (folded as stall stacks are: the
    /// call awaited, then the user's own `.await`s), of the leaf with a user `.await`, or
    /// of the first leaf.
    pub(crate) fn shown_frames(&self) -> Vec<Frame> {
        let leaf = self
            .await_point()
            .map(|(leaf, _)| leaf)
            .or_else(|| self.leaves.first().map(|leaf| &**leaf));
        leaf.map(|leaf| super::stall::shown_frames(&leaf.frames))
            .unwrap_or_default()
    }
}

/// The facts of the latest dump, whether or not it reached any task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DumpFacts {
    pub(crate) taken_ns: u64,
    pub(crate) trigger: Trigger,
    pub(crate) pause_ns: u64,
    pub(crate) chains: usize,
    pub(crate) left_out: u64,
    /// Why it has no chains, when it was skipped.
    pub(crate) skipped: Option<String>,
}

/// Every task's latest chain.
#[derive(Clone, Debug, Default)]
pub(crate) struct Waiting {
    chains: HashMap<u64, Chain>,
    latest: Option<DumpFacts>,
}

impl Waiting {
    /// Folds one dump in: its chains replace the tasks' earlier ones.
    pub(crate) fn apply(&mut self, dump: &v1::Dump) {
        let trigger = Trigger::from_wire(dump.trigger);
        let leaves = leaves_of(dump);
        for chain in &dump.chains {
            let chain_leaves = chain
                .leaves
                .iter()
                .filter_map(|&i| leaves.get(i as usize).cloned())
                .collect();
            self.chains.insert(
                chain.task_id,
                Chain {
                    taken_ns: dump.taken_ns,
                    trigger,
                    leaves: chain_leaves,
                },
            );
        }
        self.latest = Some(DumpFacts {
            taken_ns: dump.taken_ns,
            trigger,
            pause_ns: dump.pause_ns,
            chains: dump.chains.len(),
            left_out: dump.chains_left_out,
            skipped: (!dump.skipped.is_empty()).then(|| dump.skipped.clone()),
        });
    }

    /// Task `id`'s latest chain.
    pub(crate) fn of(&self, id: u64) -> Option<&Chain> {
        self.chains.get(&id)
    }

    /// The latest dump's facts.
    pub(crate) fn latest(&self) -> Option<&DumpFacts> {
        self.latest.as_ref()
    }
}

/// The dump's distinct backtraces, each resolved against its frame table once.
fn leaves_of(dump: &v1::Dump) -> Vec<Arc<Leaf>> {
    let frames: Vec<Frame> = dump.frames.iter().map(Frame::from_wire).collect();
    dump.leaves
        .iter()
        .map(|leaf| {
            let picked: Vec<Frame> = leaf
                .frames
                .iter()
                .filter_map(|&i| frames.get(i as usize).cloned())
                .collect();
            let await_frame = (leaf.await_frame as usize)
                .checked_sub(1)
                .filter(|&i| i < picked.len());
            Arc::new(Leaf {
                frames: picked,
                await_frame,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, location: &str, user: bool) -> v1::Frame {
        v1::Frame {
            function: function.into(),
            location: location.into(),
            address: 0,
            user,
        }
    }

    fn dump(taken_ns: u64, tasks: &[u64]) -> v1::Dump {
        v1::Dump {
            taken_ns,
            trigger: v1::DumpTrigger::Shutdown as i32,
            frames: vec![
                frame("tokio::sync::notify::Notified::poll", "", false),
                frame("tokio::sync::notify::Notify::notified", "notify.rs:1", true),
                frame("app::serve::{{closure}}", "src/serve.rs:88:14", true),
            ],
            leaves: vec![v1::AwaitLeaf {
                frames: vec![0, 1, 2],
                await_frame: 3,
            }],
            chains: tasks
                .iter()
                .map(|&task_id| v1::AwaitChain {
                    task_id,
                    leaves: vec![0],
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_chain_names_the_await_and_the_call_it_awaits() {
        let mut waiting = Waiting::default();
        waiting.apply(&dump(5, &[7]));
        let chain = waiting.of(7).expect("task 7 has a chain");
        let (leaf, at) = chain.await_point().expect("a user frame");
        assert_eq!(at.location.as_deref(), Some("src/serve.rs:88:14"));
        assert_eq!(
            &*leaf.awaited_call().expect("the call").function,
            "tokio::sync::notify::Notify::notified"
        );
        assert_eq!(chain.trigger, Trigger::Shutdown);
    }

    #[test]
    fn tasks_parked_at_the_same_place_share_one_backtrace() {
        let mut waiting = Waiting::default();
        waiting.apply(&dump(5, &[1, 2, 3]));
        let a = &waiting.of(1).unwrap().leaves[0];
        let b = &waiting.of(3).unwrap().leaves[0];
        assert!(Arc::ptr_eq(a, b));
    }

    #[test]
    fn a_later_dump_replaces_a_chain_and_bad_indexes_are_ignored() {
        let mut waiting = Waiting::default();
        waiting.apply(&dump(5, &[1]));
        let mut later = dump(9, &[1]);
        later.leaves[0].frames = vec![2, 99];
        later.leaves[0].await_frame = 7;
        waiting.apply(&later);
        let chain = waiting.of(1).unwrap();
        assert_eq!(chain.taken_ns, 9);
        assert_eq!(chain.leaves[0].frames.len(), 1);
        assert!(chain.await_point().is_none());
    }

    #[test]
    fn a_skipped_dump_says_why() {
        let mut waiting = Waiting::default();
        waiting.apply(&v1::Dump {
            skipped: "worker 2 is stalled in task 9".into(),
            ..Default::default()
        });
        let latest = waiting.latest().unwrap();
        assert_eq!(latest.chains, 0);
        assert_eq!(
            latest.skipped.as_deref(),
            Some("worker 2 is stalled in task 9")
        );
    }
}
