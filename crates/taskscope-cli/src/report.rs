//! Reports of a judgement, one module per format. They only print: what is a finding and
//! how bad it is was decided by the judge (`crate::model::judge`).

pub(crate) mod github;
pub(crate) mod json;
pub(crate) mod junit;
pub(crate) mod text;

#[cfg(test)]
mod tests;

use crate::model::judge::Judgement;

/// Report formats (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// For people: findings with their stacks, then a summary.
    Text,
    /// The `taskscope.check/v1` document (see docs/ci.md).
    Json,
    /// A JUnit XML test report: one test case per finding.
    Junit,
    /// GitHub Actions workflow commands: annotations on the pull request's diff.
    Github,
}

/// How the checked command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChildExit {
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl ChildExit {
    pub(crate) fn success(self) -> bool {
        self == Self::Code(0)
    }

    pub(crate) fn describe(self) -> String {
        match self {
            Self::Code(code) => format!("exited with status {code}"),
            Self::Signal(signal) => format!("was killed by signal {signal}"),
        }
    }
}

/// Everything a report shows.
#[derive(Clone, Debug)]
pub(crate) struct Report<'a> {
    pub(crate) judgement: &'a Judgement,
    /// The command run by `check -- CMD`; `None` when attaching or reading recordings.
    pub(crate) command: Option<&'a [String]>,
    pub(crate) exit: Option<ChildExit>,
    pub(crate) stall_threshold_ns: u64,
    /// The signal that stopped `check` before the observation was over.
    pub(crate) interrupted: Option<i32>,
}

/// The decision a report carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    Fail,
    /// `check` was told to stop: what was seen is reported, but it is not a whole run.
    Interrupted,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Interrupted => "interrupted",
        }
    }
}

impl Report<'_> {
    /// Interrupted whenever `check` was stopped; else fail on any error finding, and when
    /// the checked command itself failed: a test suite that failed must not pass the gate
    /// because its tasks were tidy.
    pub(crate) fn verdict(&self) -> Verdict {
        if self.interrupted.is_some() {
            Verdict::Interrupted
        } else if !self.judgement.has_errors() && self.exit.is_none_or(ChildExit::success) {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }

    /// What an interrupted report says about it, in every format.
    pub(crate) fn interruption(&self) -> Option<String> {
        self.interrupted.map(|signal| {
            format!(
                "check was stopped by signal {signal} before the run was over; this reports \
                 what was seen until then"
            )
        })
    }

    /// `command `cargo test` exited with status 101`, when it failed.
    pub(crate) fn command_failure(&self) -> Option<String> {
        let exit = self.exit.filter(|exit| !exit.success())?;
        let command = self.command.map(|c| c.join(" ")).unwrap_or_default();
        Some(format!("command `{command}` {}", exit.describe()))
    }
}

/// Splits `file:line[:col]` into its parts; `None` when it does not end in a line number.
pub(crate) fn split_location(location: &str) -> Option<(&str, u32, Option<u32>)> {
    let (rest, last) = location.rsplit_once(':')?;
    let last: u32 = last.parse().ok()?;
    match rest.rsplit_once(':') {
        Some((file, line)) if line.parse::<u32>().is_ok() && !file.is_empty() => {
            Some((file, line.parse().ok()?, Some(last)))
        }
        _ if !rest.is_empty() => Some((rest, last, None)),
        _ => None,
    }
}
