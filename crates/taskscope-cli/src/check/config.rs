//! `check`'s raw arguments, validated into what to observe and how to judge it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;

use super::allow_file;
use crate::cli::CheckArgs;
use crate::model::judge::allowance::Allowance;
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
    /// Where to write a timeline of each stall finding's flight-recorder window.
    pub(crate) trace_dir: Option<PathBuf>,
    /// The allow-list file read, if any.
    pub(crate) allow_file: Option<PathBuf>,
    /// What to tell the user before checking (e.g. an allowance broader than it looks).
    pub(crate) warnings: Vec<String>,
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
        let cwd = std::env::current_dir().unwrap_or_default();
        Self::from_args_in(args, &cwd)
    }

    /// As [`Self::from_args`], with `taskscope.toml` looked for from `cwd`.
    pub(crate) fn from_args_in(mut args: CheckArgs, cwd: &Path) -> anyhow::Result<Self> {
        let mode = mode(&mut args)?;
        let (mut policy, warnings) = policy(&args, &mode)?;
        let allow_file = match (args.config, args.no_config) {
            (Some(path), _) => Some(path),
            (None, true) => None,
            (None, false) => allow_file::discover(cwd),
        };
        if let Some(path) = &allow_file {
            for allowance in allow_file::load(path)? {
                policy.allow(allowance);
            }
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
            trace_dir: args.trace_dir,
            allow_file,
            warnings,
        })
    }
}

/// What to check: exactly one of `-- CMD`, `--attach` and `--recording` (taken out of
/// `args`).
fn mode(args: &mut CheckArgs) -> anyhow::Result<Mode> {
    Ok(
        match (
            args.command.is_empty(),
            args.attach.take(),
            args.recording.take(),
        ) {
            (false, None, None) => Mode::Run(std::mem::take(&mut args.command)),
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
        },
    )
}

/// The judge's policy from the flags (the allow file's allowances come later), and the
/// warnings about bare `--allow SITE`s.
fn policy(args: &CheckArgs, mode: &Mode) -> anyhow::Result<(Policy, Vec<String>)> {
    if let Some(kind) = args.fail_on.iter().find(|kind| args.warn_on.contains(kind)) {
        bail!("`{kind}` is in both --fail-on and --warn-on; keep it in one");
    }
    if args.stall_threshold.is_zero() {
        bail!("--stall-threshold must be above zero, e.g. 100ms");
    }
    let mut policy = Policy::default();
    policy.stall_threshold_ns = u64::try_from(args.stall_threshold.as_nanos()).unwrap_or(u64::MAX);
    policy.deadlock_after_ns = u64::try_from(args.deadlock_after.as_nanos()).unwrap_or(u64::MAX);
    policy.growth = matches!(mode, Mode::Attach { .. });
    policy.fail_on(&args.fail_on);
    policy.warn_on(&args.warn_on);
    policy.fail_on_unused_allowance = args.fail_on_unused_allow;
    let mut warnings = Vec::new();
    for text in &args.allow {
        let allowance = Allowance::parse(text, "--allow")
            .map_err(|e| anyhow::anyhow!("--allow '{text}': {e}"))?;
        if allowance.is_bare() {
            warnings.push(bare_warning(text));
        }
        policy.allow(allowance);
    }
    Ok((policy, warnings))
}

/// Why a bare `--allow SITE` deserves a second look.
fn bare_warning(text: &str) -> String {
    format!(
        "--allow '{text}' names no kind, so it accepts every kind of finding there: a new \
         stall at that site would pass too. Name the kind, e.g. --allow \
         'alive_at_shutdown@{text}' (or '*@{text}' to accept every kind on purpose)"
    )
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

    /// With no `taskscope.toml` around, unless the arguments name one.
    fn config(args: &[&str]) -> anyhow::Result<Config> {
        let argv = std::iter::once("check").chain(args.iter().copied());
        let empty = tempfile::tempdir().unwrap();
        std::fs::create_dir(empty.path().join(".git")).unwrap();
        Config::from_args_in(Check::try_parse_from(argv)?.args, empty.path())
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
            "--allow",
            "stall@src/b.rs:*#slow_*",
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
        let [bare, named] = policy.allowances() else {
            panic!("{policy:?}")
        };
        assert!(bare.matches(FindingKind::Panic, "crates/x/src/a.rs:3:4", None));
        assert!(named.matches(FindingKind::Stall, "src/b.rs:1:1", Some("slow_io")));
        assert!(!named.matches(FindingKind::Panic, "src/b.rs:1:1", Some("slow_io")));
        // Only the bare one is worth a warning.
        let [warning] = config.warnings.as_slice() else {
            panic!("{:?}", config.warnings)
        };
        assert!(
            warning.contains("alive_at_shutdown@src/a.rs:*"),
            "{warning}"
        );
    }

    #[test]
    fn a_found_allow_list_adds_to_the_flags_unless_told_otherwise() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir(repo.path().join(".git")).unwrap();
        let file = repo.path().join("taskscope.toml");
        std::fs::write(
            &file,
            "[[allow]]\nkind = \"panic\"\nsite = \"src/a.rs:*\"\nreason = \"known\"\n",
        )
        .unwrap();
        let parse = |args: &[&str]| {
            let argv = std::iter::once("check").chain(args.iter().copied());
            Config::from_args_in(Check::try_parse_from(argv).unwrap().args, repo.path())
        };
        let found = parse(&["--allow", "stall@src/b.rs:*", "--", "true"]).unwrap();
        assert_eq!(found.policy.allowances().len(), 2);
        assert_eq!(found.allow_file.as_deref(), Some(file.as_path()));
        let ignored = parse(&["--no-config", "--", "true"]).unwrap();
        assert!(ignored.policy.allowances().is_empty());
        let missing = parse(&["--config", "/nonexistent/taskscope.toml", "--", "true"]);
        let err = format!("{:#}", missing.unwrap_err());
        assert!(err.contains("cannot read the allow-list"), "{err}");
    }

    #[test]
    fn a_bad_allowance_is_refused_naming_it() {
        let err = config(&["--allow", "leak@src/a.rs:*", "--", "true"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--allow 'leak@src/a.rs:*'") && err.contains("not a kind"));
    }

    #[test]
    fn a_zero_threshold_is_refused() {
        assert!(config(&["--stall-threshold", "0ms", "--", "true"]).is_err());
    }
}
