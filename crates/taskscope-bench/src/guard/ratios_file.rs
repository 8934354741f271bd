//! The committed ratios (`crates/taskscope-bench/ratios.json`): what one guard run
//! measured, where and when, in a versioned format the guard compares against and the
//! performance docs are generated from.
//!
//! Every repetition's ratio is kept, not only the median: the comparison needs the
//! baseline's spread, and a reader can see how noisy the machine was.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::checks::Check;
use crate::mode::Mode;
use crate::report::Machine;
use crate::stats::Quartiles;
use crate::workload::Workload;

/// The format's version; a file of another version is refused, not guessed at.
pub(crate) const SCHEMA: u32 = 1;

/// The workspace this harness was built from (its crate is two levels down).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// Where the baseline lives in the repository.
pub(crate) fn default_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ratios.json")
}

/// One guard run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RatiosFile {
    pub(crate) schema: u32,
    /// The taskscope version measured.
    pub(crate) version: String,
    /// The commit of the code measured, abbreviated (`-dirty` when the workspace's code
    /// had uncommitted changes), or `unknown` outside a checkout.
    pub(crate) commit: String,
    /// When the run ended, UTC, ISO 8601.
    pub(crate) date: String,
    /// The command line, for a reader who wants to repeat it.
    pub(crate) command: String,
    pub(crate) machine: Machine,
    /// The 1-minute load average at the start of each repetition: how busy the machine was
    /// while the ratios were taken (other builds, other benchmarks).
    pub(crate) load_per_rep: Vec<f64>,
    pub(crate) reps: u32,
    pub(crate) checks: Vec<CheckRecord>,
}

/// One ratio over every repetition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CheckRecord {
    /// `workload:mode/against`, as [`Check::id`] makes it.
    pub(crate) id: String,
    pub(crate) workload: Workload,
    pub(crate) mode: Mode,
    pub(crate) against: Mode,
    pub(crate) size: u64,
    pub(crate) guarded: bool,
    /// The target when the ratios were recorded (the docs show today's, from `checks.rs`).
    pub(crate) target: Option<f64>,
    /// The figures of `wall_ratios`, written for people reading the file; the guard and
    /// the docs recompute them from the ratios.
    pub(crate) wall: Option<Quartiles>,
    pub(crate) cpu: Option<Quartiles>,
    /// Wall time over `against`'s, repetition by repetition.
    pub(crate) wall_ratios: Vec<f64>,
    /// CPU time over `against`'s, repetition by repetition.
    pub(crate) cpu_ratios: Vec<f64>,
}

impl CheckRecord {
    /// The record of `check` from its per-repetition ratios.
    pub(crate) fn new(check: &Check, wall_ratios: Vec<f64>, cpu_ratios: Vec<f64>) -> Self {
        Self {
            id: check.id(),
            workload: check.workload,
            mode: check.mode,
            against: check.against,
            size: check.size(),
            guarded: check.guarded,
            target: check.target,
            wall: Quartiles::of(&wall_ratios),
            cpu: Quartiles::of(&cpu_ratios),
            wall_ratios,
            cpu_ratios,
        }
    }

    /// The wall-time ratio's figures, from the ratios themselves.
    pub(crate) fn wall(&self) -> Option<Quartiles> {
        Quartiles::of(&self.wall_ratios)
    }

    /// The CPU-time ratio's figures, from the ratios themselves.
    pub(crate) fn cpu(&self) -> Option<Quartiles> {
        Quartiles::of(&self.cpu_ratios)
    }
}

impl RatiosFile {
    /// Reads and checks a ratios file; every error names the file and what to do.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the ratios file {}; record one with \
                 `cargo run --release -p taskscope-bench -- guard --bless`",
                path.display()
            )
        })?;
        Self::parse(&text).with_context(|| format!("{} is not a ratios file", path.display()))
    }

    /// Parses a ratios file's text.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        #[derive(Deserialize)]
        struct Version {
            schema: u32,
        }
        let version: Version =
            serde_json::from_str(text).context("expected a JSON object with a `schema` number")?;
        if version.schema != SCHEMA {
            bail!(
                "it has schema {}, this harness reads schema {SCHEMA}; record a new \
                 baseline with `guard --bless`",
                version.schema
            );
        }
        let file: Self = serde_json::from_str(text)?;
        for check in &file.checks {
            if check.wall_ratios.is_empty() || check.wall_ratios.iter().any(|r| !r.is_finite()) {
                bail!("`{}` has no usable wall-time ratios", check.id);
            }
        }
        Ok(file)
    }

    /// Writes the file, pretty-printed, with a final newline (it is committed).
    pub(crate) fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the ratios file {}", path.display()))
    }

    /// The record named `id`.
    pub(crate) fn check(&self, id: &str) -> Option<&CheckRecord> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// The commit of the code being measured: `git rev-parse`, plus `-dirty` when the
/// workspace's code differs from it (the ratios file itself, rewritten by `--bless`, and
/// the docs do not count).
pub(crate) fn commit() -> String {
    let root = workspace_root();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".to_owned();
    };
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "crates",
        "Cargo.toml",
        "Cargo.lock",
        ":(exclude)crates/taskscope-bench/ratios.json",
    ])
    .is_some_and(|changes| !changes.is_empty());
    if dirty { format!("{head}-dirty") } else { head }
}

/// Now, UTC, as `2026-12-06T14:05:09Z`.
pub(crate) fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// Seconds since the Unix epoch as an ISO 8601 UTC time (Howard Hinnant's
/// days-to-civil algorithm: no date library for one timestamp).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3_600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_are_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_560_509), "2026-12-06T12:35:09Z");
    }

    #[test]
    fn a_file_of_another_schema_is_refused_with_what_to_do() {
        let error = RatiosFile::parse(r#"{"schema": 99, "checks": []}"#).unwrap_err();
        assert!(format!("{error:#}").contains("guard --bless"), "{error:#}");
        let error = RatiosFile::parse("[1, 2]").unwrap_err();
        assert!(format!("{error:#}").contains("`schema`"), "{error:#}");
    }
}
