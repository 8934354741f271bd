//! `taskscope`: finds what makes a tokio program slow or stuck.
//!
//! `main` only parses the command line, runs the command on a small runtime and maps the
//! outcome to an exit status: 0 pass, 1 fail, 2 could not check (every error, printed
//! with its chain of causes).

mod check;
mod cli;
mod demo;
mod duration;
mod events;
mod export;
mod model;
mod report;
mod source;
mod timeline;
mod tui;

#[cfg(test)]
mod docs_agree;
#[cfg(test)]
mod help_pinned;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::source::protocol::Options;

fn main() -> ExitCode {
    let cli = Cli::parse();
    source::token::set_given(cli.token.clone());
    if let Err(error) = source::tls::set_ca(cli.tls_ca.as_deref()) {
        eprintln!("taskscope: error: {error:#}");
        return ExitCode::from(2);
    }
    if let Some(Command::DemoWorkload) = cli.command {
        // Its own multi-threaded runtime and probe: not the small one below.
        return demo::workload::run();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("taskscope: error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Some(Command::Check(args)) => check::run(*args).await,
            Some(Command::Events(args)) => events::run(args).await,
            Some(Command::Export(args)) => export::run(&args).await,
            Some(Command::Attach(args)) => {
                let options = Options {
                    protocol: args.protocol,
                    connect_timeout: args.connect_timeout,
                    ..Options::default()
                };
                tui::attach(args.address.as_deref(), options).await
            }
            None => tui::attach(None, Options::default()).await,
            Some(Command::Replay(args)) => tui::replay(&args.path).await,
            Some(Command::Demo) => demo::run().await,
            Some(Command::DemoWorkload) => unreachable!("handled before the runtime starts"),
        }
    });
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("taskscope: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
