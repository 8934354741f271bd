//! Dumps of every registered runtime, as clients ask for them (`Dump` RPC): one at a
//! time, and at most one per [`MIN_INTERVAL`] (a request inside it gets the last dump
//! again), because each pauses the app's workers.

use std::time::{Duration, Instant};

use taskscope_api::v1;

use super::capture::{self, RawDump};
use super::chains;
use crate::detect::stall_stack::Symbolize;
use crate::tasks::runtimes;

/// The shortest time between two dumps taken for clients.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// How long the workers get to pause for a dump.
pub(crate) const PAUSE_TIMEOUT: Duration = Duration::from_secs(2);

const NO_RUNTIME: &str = "no runtime to dump: await chains cover the runtimes of \
                          #[taskscope::main] and #[taskscope::test], those whose body runs \
                          through taskscope::block_on, and the runtime taskscope::init() was \
                          called in";

/// The last dump given to a client; its lock is what makes dumps one at a time.
pub(crate) struct Requests {
    last: tokio::sync::Mutex<Option<(Instant, v1::Dump)>>,
    /// Where dumps' stacks are resolved.
    symbolize: Option<Symbolize>,
}

impl Requests {
    /// Dumps resolved on `symbolize`'s thread (unresolved addresses without one).
    pub(crate) fn new(symbolize: Option<Symbolize>) -> Self {
        Self {
            last: Default::default(),
            symbolize,
        }
    }

    /// The wire form of a dump a runtime took itself (at its shutdown).
    pub(crate) async fn build(
        &self,
        raw: Result<RawDump, String>,
        trigger: v1::DumpTrigger,
        taken_ns: u64,
    ) -> v1::Dump {
        chains::build(self.symbolize.as_ref(), raw, trigger, taken_ns).await
    }

    /// A dump for a client, and whether it was taken now (so is news for watchers).
    pub(crate) async fn answer(&self) -> (v1::Dump, bool) {
        let mut last = self.last.lock().await;
        if let Some((at, dump)) = last.as_ref()
            && at.elapsed() < MIN_INTERVAL
        {
            return (dump.clone(), false);
        }
        let dump = self.take_all(v1::DumpTrigger::Requested, None).await;
        *last = Some((Instant::now(), dump.clone()));
        (dump, true)
    }

    /// A dump of the runtimes whose end the probe cannot see, taken because tasks went
    /// idle (one at a time with the requested ones).
    pub(crate) async fn when_idle(&self) -> v1::Dump {
        let _one_at_a_time = self.last.lock().await;
        let unseen = Some(runtimes::Ending::Unseen);
        self.take_all(v1::DumpTrigger::Idle, unseen).await
    }

    /// One dump covering every registered runtime (that ends as `ending`, if given).
    async fn take_all(
        &self,
        trigger: v1::DumpTrigger,
        ending: Option<runtimes::Ending>,
    ) -> v1::Dump {
        let taken_ns = crate::base::clock::now_ns();
        let mut merged: Option<RawDump> = None;
        let mut reasons = Vec::new();
        runtimes::forget_closed();
        for handle in runtimes::all(ending) {
            match capture::take(&handle, PAUSE_TIMEOUT).await {
                Ok(raw) => match merged.as_mut() {
                    Some(all) => all.absorb(raw),
                    None => merged = Some(raw),
                },
                Err(reason) => reasons.push(reason),
            }
        }
        let raw = match merged {
            Some(raw) => Ok(raw),
            None if reasons.is_empty() => Err(NO_RUNTIME.to_owned()),
            None => Err(reasons.join("; ")),
        };
        self.build(raw, trigger, taken_ns).await
    }
}
