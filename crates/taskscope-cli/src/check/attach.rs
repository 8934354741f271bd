//! Watching a running service for a window.

use std::time::Duration;

use crate::model::Model;
use crate::source::Address;
use crate::source::protocol::{LiveWatch, Options};

/// Folds the live stream for `duration` (or until the probe goes away, or Ctrl-C).
pub(crate) async fn watch(
    address: &Address,
    duration: Duration,
    options: Options,
) -> anyhow::Result<Model> {
    let mut watch = LiveWatch::start(address, options).await?;
    let mut model = Model::new();
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
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(model)
}
