//! Watching a running service for a window.

use std::time::Duration;

use super::signals::Terminating;
use crate::model::Model;
use crate::source::Address;
use crate::source::protocol::{LiveWatch, Options};

/// Folds the live stream for `duration`, or until the probe goes away, or until `check`
/// is told to stop (then the signal is returned with what was seen: an interrupted window).
pub(crate) async fn watch(
    address: &Address,
    duration: Duration,
    options: Options,
) -> anyhow::Result<(Model, Option<i32>)> {
    let mut signals = Terminating::listen()?;
    let mut watch = LiveWatch::start(address, options).await?;
    let mut model = Model::new();
    // The first update came with the connection: fold it before anything can end the
    // window, so an interrupted report still names the process.
    match watch.next().await? {
        Some(update) => model.apply(&update),
        None => {
            model.finish();
            return Ok((model, None));
        }
    }
    let deadline = tokio::time::sleep(duration);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            update = watch.next() => match update? {
                Some(update) => model.apply(&update),
                None => {
                    // The service went away before the window ended: judge what we saw.
                    model.finish();
                    break;
                }
            },
            () = &mut deadline => break,
            number = signals.recv() => return Ok((model, Some(number))),
        }
    }
    Ok((model, None))
}
