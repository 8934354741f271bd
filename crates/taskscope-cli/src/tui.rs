//! The terminal dashboard: `taskscope attach`, `taskscope replay` and `taskscope demo`.
//!
//! A source (the live link or a replayed recording) feeds the same [`Model`] `check`
//! judges; [`app`] holds it with what the user is looking at, [`view`] draws it,
//! [`keys`] turns input into changes, [`run`] is the loop that ties them to the terminal.
//!
//! [`Model`]: crate::model::Model

pub(crate) mod app;
mod dumps;
pub(crate) mod keys;
pub(crate) mod live;
pub(crate) mod replay;
mod run;
mod terminal;
pub(crate) mod theme;
pub(crate) mod view;
pub(crate) mod viewmodel;

#[cfg(test)]
mod tests;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;

use self::app::App;
use self::replay::Player;
use crate::source::Address;
use crate::source::protocol::{Options, Protocol};

/// Where `taskscope attach` looks when given no address: the probe's default.
pub(crate) const DEFAULT_ADDRESS: &str = "http://127.0.0.1:6670";

/// Where `taskscope attach --protocol console` looks when given no address:
/// console-subscriber's default.
pub(crate) const DEFAULT_CONSOLE_ADDRESS: &str = "http://127.0.0.1:6669";

/// The dashboard draws on a terminal and reads keys from it; without one it would only
/// garble a pipe.
pub(crate) fn need_terminal() -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "the dashboard needs a terminal; to read a probe from a script use \
             `taskscope events ADDR`, or `taskscope check` for a verdict"
        );
    }
    Ok(())
}

/// `taskscope attach [--protocol P] [ADDR]`.
pub(crate) async fn attach(address: Option<&str>, options: Options) -> anyhow::Result<ExitCode> {
    let text = address.unwrap_or(match options.protocol {
        Protocol::Console => DEFAULT_CONSOLE_ADDRESS,
        Protocol::Auto | Protocol::Taskscope => DEFAULT_ADDRESS,
    });
    let Some(address) = Address::parse(text) else {
        bail!(
            "`{text}` is not a probe address; write e.g. 127.0.0.1:6670, http://host:6670 or unix:/path/to.sock"
        );
    };
    need_terminal()?;
    watch_with(address, None, options).await?;
    Ok(ExitCode::SUCCESS)
}

/// Watches a live probe; `label` names it in the header (the address otherwise).
pub(crate) async fn watch(address: Address, label: Option<String>) -> anyhow::Result<()> {
    watch_with(address, label, Options::default()).await
}

/// [`watch`], speaking the protocol `options` ask for.
pub(crate) async fn watch_with(
    address: Address,
    label: Option<String>,
    options: Options,
) -> anyhow::Result<()> {
    let app = App::live(label.unwrap_or_else(|| address.to_string()), Instant::now());
    let link = live::spawn(address, options);
    run::run(app, Some(link)).await
}

/// `taskscope replay PATH`.
pub(crate) async fn replay(path: &Path) -> anyhow::Result<ExitCode> {
    let player = Player::open(path)?;
    need_terminal()?;
    let app = App::replay(player, path.display().to_string(), Instant::now());
    run::run(app, None).await?;
    Ok(ExitCode::SUCCESS)
}
