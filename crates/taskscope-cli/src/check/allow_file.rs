//! The committed allow-list, `taskscope.toml`: the findings a project accepts, each with
//! the reason it is accepted, reviewed like code (as `deny.toml` and `clippy.toml` are).
//!
//! ```toml
//! [[allow]]
//! kind = "alive_at_shutdown"
//! site = "src/metrics.rs:*"
//! test = "metrics_*"          # optional
//! reason = "the exporter runs for the life of the process"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::model::judge::allowance::Allowance;

/// The file's name, looked for from the current directory up to the repository's root.
pub(crate) const FILE_NAME: &str = "taskscope.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    allow: Vec<toml::Spanned<Entry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    kind: String,
    site: String,
    test: Option<String>,
    reason: Option<String>,
}

/// The allow-list that applies in `dir`: `taskscope.toml` there or in a parent, stopping
/// at the repository's root (the first directory holding `.git`).
pub(crate) fn discover(dir: &Path) -> Option<PathBuf> {
    for dir in dir.ancestors() {
        let candidate = dir.join(FILE_NAME);
        if candidate.is_file() {
            return Some(candidate);
        }
        if dir.join(".git").exists() {
            return None;
        }
    }
    None
}

/// Reads the allowances of the file at `path`.
pub(crate) fn load(path: &Path) -> anyhow::Result<Vec<Allowance>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the allow-list {}", path.display()))?;
    parse(&text, &path.display().to_string())
}

/// Parses an allow-list; `name` is how errors and reports refer to the file.
pub(crate) fn parse(text: &str, name: &str) -> anyhow::Result<Vec<Allowance>> {
    let file: File = toml::from_str(text).with_context(|| {
        format!(
            "{name} is not a valid allow-list; each entry is an [[allow]] table with \
             `kind`, `site`, an optional `test` and a `reason` (see docs/ci.md)"
        )
    })?;
    let mut allowances = Vec::with_capacity(file.allow.len());
    for spanned in file.allow {
        let line = text[..spanned.span().start].lines().count() + 1;
        let at = format!("{name}:{line}");
        let entry = spanned.into_inner();
        let mut allowance = Allowance::new(&entry.kind, &entry.site, entry.test.as_deref(), &at)
            .map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
        match entry.reason.map(|r| r.trim().to_owned()) {
            Some(reason) if !reason.is_empty() => allowance.reason = Some(reason),
            _ => bail!(
                "{at}: the allowance `{allowance}` has no `reason`; say why it is accepted \
                 (reason = \"...\"), so the next reader can tell whether it still applies"
            ),
        }
        allowances.push(allowance);
    }
    Ok(allowances)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::judge::policy::FindingKind;

    #[test]
    fn entries_become_allowances_located_by_line() {
        let text = "\
# accepted findings
[[allow]]
kind = \"alive_at_shutdown\"
site = \"src/metrics.rs:*\"
reason = \"runs for the life of the process\"

[[allow]]
kind = \"*\"
site = \"tests/common/*\"
test = \"pool_*\"
reason = \"the shared pool outlives each test by design\"
";
        let allowances = parse(text, "taskscope.toml").unwrap();
        assert_eq!(allowances.len(), 2);
        assert_eq!(
            allowances[0].to_string(),
            "alive_at_shutdown@src/metrics.rs:*"
        );
        assert_eq!(allowances[0].origin, "taskscope.toml:2");
        assert_eq!(
            allowances[0].reason.as_deref(),
            Some("runs for the life of the process")
        );
        assert_eq!(allowances[1].origin, "taskscope.toml:7");
        assert!(allowances[1].matches(FindingKind::Stall, "tests/common/x.rs:1:1", Some("pool_a")));
        assert!(!allowances[1].is_bare());
    }

    #[test]
    fn an_entry_without_a_reason_is_refused_naming_its_line() {
        let text = "[[allow]]\nkind = \"stall\"\nsite = \"src/a.rs:*\"\nreason = \" \"\n";
        let err = format!("{:#}", parse(text, "taskscope.toml").unwrap_err());
        assert!(
            err.contains("taskscope.toml:1") && err.contains("no `reason`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        let typo = "[[allow]]\nkind = \"stall\"\nsites = \"src/a.rs:*\"\nreason = \"x\"\n";
        let err = format!("{:#}", parse(typo, "t.toml").unwrap_err());
        assert!(err.contains("not a valid allow-list"), "{err}");
        let kind = "[[allow]]\nkind = \"leak\"\nsite = \"src/a.rs:*\"\nreason = \"x\"\n";
        let err = format!("{:#}", parse(kind, "t.toml").unwrap_err());
        assert!(err.contains("`leak` is not a kind"), "{err}");
    }

    #[test]
    fn the_file_is_found_up_to_the_repository_root() {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("repo");
        let deep = repo.join("crates/app");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir(repo.join(".git")).unwrap();
        // Above the repository: never read.
        std::fs::write(root.path().join(FILE_NAME), "").unwrap();
        assert_eq!(discover(&deep), None);
        std::fs::write(repo.join(FILE_NAME), "").unwrap();
        assert_eq!(discover(&deep), Some(repo.join(FILE_NAME)));
    }
}
