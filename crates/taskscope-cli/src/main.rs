//! `taskscope`: finds what makes a tokio program slow or stuck.
//!
//! `main` only parses the command line, runs the command on a small runtime and maps the
//! outcome to an exit status: 0 pass, 1 fail, 2 could not check (every error, printed
//! with its chain of causes).

mod check;
mod cli;
mod duration;
mod events;
mod model;
mod report;
mod source;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            Command::Check(args) => check::run(args).await,
            Command::Events(args) => events::run(args).await,
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
