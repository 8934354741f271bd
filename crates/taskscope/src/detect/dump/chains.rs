//! A raw dump made into the wire's `Dump`: its addresses symbolized on the probe's
//! symbolizer thread (never on the app's threads), every distinct frame stored once.

use std::collections::HashMap;
use std::time::Duration;

use taskscope_api::v1;

use super::capture::RawDump;
use crate::detect::stall_stack::{Job, ResolvedStack, Symbolize};

/// Chains one dump carries at most (about 1.5 MB on the wire); tasks beyond are counted
/// in `chains_left_out`.
pub(crate) const MAX_CHAINS: usize = 100_000;

/// How long resolving may take: the first use of the symbolizer reads the binary's debug
/// info, seconds for a large binary.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The wire form of `raw`, or of why there is none.
pub(crate) async fn build(
    symbolize: Option<&Symbolize>,
    raw: Result<RawDump, String>,
    trigger: v1::DumpTrigger,
    taken_ns: u64,
) -> v1::Dump {
    let mut dump = v1::Dump {
        taken_ns,
        trigger: trigger as i32,
        ..Default::default()
    };
    let mut raw = match raw {
        Ok(raw) => raw,
        Err(reason) => {
            dump.skipped = reason;
            return dump;
        }
    };
    dump.pause_ns = raw.pause.as_nanos() as u64;
    if raw.chains.len() > MAX_CHAINS {
        dump.chains_left_out = (raw.chains.len() - MAX_CHAINS) as u64;
        raw.chains.truncate(MAX_CHAINS);
    }
    let resolved = resolve(symbolize, std::mem::take(&mut raw.leaves)).await;
    let mut frames = FrameTable::default();
    dump.leaves = resolved
        .into_iter()
        .map(|stack| v1::AwaitLeaf {
            await_frame: stack.innermost_user.map_or(0, |i| i as u32 + 1),
            frames: stack.frames.into_iter().map(|f| frames.index(f)).collect(),
        })
        .collect();
    dump.frames = frames.frames;
    dump.chains = raw
        .chains
        .into_iter()
        .map(|(task_id, leaves)| v1::AwaitChain { task_id, leaves })
        .collect();
    dump
}

/// Resolves on the symbolizer thread; unresolved addresses where there is none.
async fn resolve(symbolize: Option<&Symbolize>, stacks: Vec<Vec<usize>>) -> Vec<ResolvedStack> {
    let unresolved = |stacks: &[Vec<usize>]| {
        stacks
            .iter()
            .map(|stack| ResolvedStack {
                frames: stack
                    .iter()
                    .map(|&address| v1::Frame {
                        function: format!("{address:#x}"),
                        address: address as u64,
                        ..Default::default()
                    })
                    .collect(),
                innermost_user: None,
            })
            .collect()
    };
    let Some(symbolizer) = symbolize else {
        return unresolved(&stacks);
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job = Job::Stacks {
        stacks: stacks.clone(),
        reply,
    };
    if !symbolizer.send(job) {
        return unresolved(&stacks);
    }
    match tokio::time::timeout(RESOLVE_TIMEOUT, answer).await {
        Ok(Ok(resolved)) => resolved,
        _ => unresolved(&stacks),
    }
}

/// Frames stored once, by what a client sees of them.
#[derive(Default)]
struct FrameTable {
    frames: Vec<v1::Frame>,
    known: HashMap<(String, String, bool), u32>,
}

impl FrameTable {
    fn index(&mut self, frame: v1::Frame) -> u32 {
        let key = (frame.function.clone(), frame.location.clone(), frame.user);
        *self.known.entry(key).or_insert_with(|| {
            self.frames.push(frame);
            (self.frames.len() - 1) as u32
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_frames_are_stored_once() {
        let mut table = FrameTable::default();
        let frame = |function: &str| v1::Frame {
            function: function.into(),
            location: "src/a.rs:1".into(),
            address: 7,
            user: true,
        };
        assert_eq!(table.index(frame("a")), 0);
        assert_eq!(table.index(frame("b")), 1);
        let mut elsewhere = frame("a");
        elsewhere.address = 9;
        assert_eq!(table.index(elsewhere), 0);
        assert_eq!(table.frames.len(), 2);
    }
}
