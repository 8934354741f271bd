//! `check`'s raw arguments, validated into what to observe and how to judge it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use crate::cli::CheckArgs;
use crate::model::judge::glob::Glob;
use crate::model::judge::policy::Policy;
use crate::report::Format;
use crate::source::Address;
use crate::source::protocol::Protocol;

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
    /// The protocol of the --attach target.
    pub(crate) protocol: Protocol,
    /// How long the --attach target may take to connect and answer.
    pub(crate) connect_timeout: Duration,
    /// How long CMD may take to stop after a forwarded signal.
    pub(crate) kill_after: Duration,
    pub(crate) format: Format,
    pub(crate) output: Option<PathBuf>,
}

impl Config {
    /// How `--attach` connects: the protocol, and the threshold a translated
    /// console-subscriber stream derives its stalls from.
    pub(crate) fn live_options(&self) -> crate::source::protocol::Options {
        crate::source::protocol::Options {
            protocol: self.protocol,
            stall_threshold: self.stall_threshold,
            connect_timeout: self.connect_timeout,
        }
    }

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
            protocol: args.protocol,
            connect_timeout: args.connect_timeout,
            kill_after: args.kill_after,
            format: args.format,
            output: args.output,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::model::judge::policy::{FindingKind, Severity};

    /// `check`'s flags alone, so these tests do not depend on the other commands.
    #[derive(Parser)]
    struct Check {
        #[command(flatten)]
        args: CheckArgs,
    }

    fn config(args: &[&str]) -> anyhow::Result<Config> {
        let argv = std::iter::once("check").chain(args.iter().copied());
        Config::from_args(Check::try_parse_from(argv)?.args)
    }

    #[test]
    fn the_mode_is_whichever_one_was_given() {
        assert_eq!(
            config(&["--", "cargo", "test"]).unwrap().mode,
            Mode::Run(vec!["cargo".into(), "test".into()])
        );
        assert_eq!(
            config(&["--attach", "unix:/tmp/s", "--duration", "2s"])
                .unwrap()
                .mode,
            Mode::Attach {
                address: Address::Unix("/tmp/s".into()),
                duration: Duration::from_secs(2)
            }
        );
        assert_eq!(
            config(&["--recording", "r"]).unwrap().mode,
            Mode::Recording("r".into())
        );
    }

    #[test]
    fn two_modes_or_none_are_refused() {
        let err = config(&["--recording", "r", "--", "true"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("only one"), "{err}");
        assert!(
            config(&[])
                .unwrap_err()
                .to_string()
                .contains("nothing to check")
        );
        assert!(
            config(&["--attach", "not an address"])
                .unwrap_err()
                .to_string()
                .contains("not an address")
        );
    }

    #[test]
    fn only_attach_looks_for_growth() {
        assert!(
            config(&["--attach", "127.0.0.1:6670"])
                .unwrap()
                .policy
                .growth
        );
        assert!(!config(&["--", "true"]).unwrap().policy.growth);
    }

    #[test]
    fn severities_thresholds_and_allow_patterns_reach_the_policy() {
        let config = config(&[
            "--fail-on",
            "panic",
            "--warn-on",
            "stall,lost_waker",
            "--stall-threshold",
            "1.5s",
            "--allow",
            "src/a.rs:*",
            "--",
            "true",
        ])
        .unwrap();
        let policy = &config.policy;
        assert_eq!(policy.severity(FindingKind::Panic), Severity::Error);
        assert_eq!(policy.severity(FindingKind::Stall), Severity::Warning);
        assert_eq!(policy.severity(FindingKind::LostWaker), Severity::Warning);
        assert_eq!(
            policy.severity(FindingKind::AliveAtShutdown),
            Severity::Error
        );
        assert_eq!(policy.stall_threshold_ns, 1_500_000_000);
        assert!(policy.is_allowed("crates/x/src/a.rs:3:4"));
    }

    #[test]
    fn a_zero_threshold_is_refused() {
        assert!(config(&["--stall-threshold", "0ms", "--", "true"]).is_err());
    }
}
