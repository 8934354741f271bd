//! `check`'s raw arguments, validated into what to observe and how to judge it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use crate::cli::CheckArgs;
use crate::model::judge::glob::Glob;
use crate::model::judge::policy::Policy;
use crate::report::Format;
use crate::source::Address;

/// What to observe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Run this command and judge the recordings of every instrumented process it starts.
    Run(Vec<String>),
    /// Watch a live probe for a while.
    Attach {
        address: Address,
        duration: Duration,
    },
    /// Judge existing recordings.
    Recording(PathBuf),
}

/// A validated `check` invocation.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) mode: Mode,
    pub(crate) policy: Policy,
    pub(crate) stall_threshold: Duration,
    pub(crate) format: Format,
    pub(crate) output: Option<PathBuf>,
}

impl Config {
    pub(crate) fn from_args(args: CheckArgs) -> anyhow::Result<Self> {
        let mode = match (args.command.is_empty(), args.attach, args.recording) {
            (false, None, None) => Mode::Run(args.command),
            (true, Some(address), None) => Mode::Attach {
                address: Address::parse(&address).ok_or_else(|| {
                    anyhow::anyhow!(
                        "`{address}` is not an address; write e.g. `127.0.0.1:6670`, \
                         `http://host:6670` or `unix:/tmp/app.sock`"
                    )
                })?,
                duration: args.duration,
            },
            (true, None, Some(path)) => Mode::Recording(path),
            (true, None, None) => bail!(
                "nothing to check: give a command after `--` (taskscope check -- cargo test), \
                 --attach ADDR, or --recording PATH"
            ),
            _ => bail!("give only one of `-- CMD`, --attach ADDR and --recording PATH"),
        };
        if let Some(kind) = args.fail_on.iter().find(|kind| args.warn_on.contains(kind)) {
            bail!("`{kind}` is in both --fail-on and --warn-on; keep it in one");
        }
        if args.stall_threshold.is_zero() {
            bail!("--stall-threshold must be above zero, e.g. 100ms");
        }
        let mut policy = Policy::default();
        policy.stall_threshold_ns =
            u64::try_from(args.stall_threshold.as_nanos()).unwrap_or(u64::MAX);
        policy.growth = matches!(mode, Mode::Attach { .. });
        policy.fail_on(&args.fail_on);
        policy.warn_on(&args.warn_on);
        for pattern in &args.allow {
            policy.allow(Glob::new(pattern).map_err(anyhow::Error::msg)?);
        }
        Ok(Self {
            mode,
            policy,
            stall_threshold: args.stall_threshold,
            format: args.format,
            output: args.output,
        })
    }
}
