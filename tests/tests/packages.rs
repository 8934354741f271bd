//! The published crates, as cargo sees them (`cargo metadata`): the five that users depend
//! on carry what crates.io and a user's build need, name each other by version, and
//! declare a `rust-version` no older than any dependency's; every other package says
//! `publish = false`.
//!
//! `.ci/run` packages them (`cargo package`); these tests say why a manifest is wrong in
//! the project's terms before that step does, and hold what `cargo package` does not
//! check (readme, keywords, categories, licence files, `rust-version`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use taskscope_e2e::{cargo, workspace_root};

/// The crates users depend on: the probe, what it is made of, and the CLI.
const PUBLISHED: [&str; 5] = [
    "taskscope",
    "taskscope-api",
    "taskscope-cli",
    "taskscope-macros",
    "taskscope-stack",
];

/// `cargo metadata` of the workspace: every package the lock file resolves, for every
/// platform, dev-dependencies included.
fn metadata() -> Value {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// The workspace's own packages, by name.
fn members(metadata: &Value) -> BTreeMap<String, &Value> {
    let ids: Vec<&Value> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .collect();
    packages(metadata)
        .filter(|package| ids.contains(&&package["id"]))
        .map(|package| (text(package, "name").to_owned(), package))
        .collect()
}

fn packages(metadata: &Value) -> impl Iterator<Item = &Value> {
    metadata["packages"].as_array().expect("packages").iter()
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

/// `1.88` or `1.88.0` as numbers that compare as versions do.
fn rust_version(text: &str) -> (u64, u64, u64) {
    let mut parts = text
        .split('.')
        .map(|part| part.parse::<u64>().expect("a rust-version is numbers"));
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

fn is_published(package: &Value) -> bool {
    // `publish = false` reads as an empty list of registries; no `publish` as null.
    package["publish"]
        .as_array()
        .is_none_or(|list| !list.is_empty())
}

fn manifest_dir(package: &Value) -> PathBuf {
    Path::new(text(package, "manifest_path"))
        .parent()
        .expect("a manifest is in a directory")
        .to_owned()
}

#[test]
fn rust_version_is_at_least_what_every_dependency_declares() {
    let metadata = metadata();
    let members = members(&metadata);
    let declared = text(members["taskscope"], "rust_version");
    assert!(
        !declared.is_empty(),
        "the workspace declares no rust-version"
    );
    for (name, package) in &members {
        assert_eq!(
            text(package, "rust_version"),
            declared,
            "{name} declares its own rust-version: inherit the workspace's \
             (rust-version.workspace = true)"
        );
    }
    let newer: Vec<String> = packages(&metadata)
        .filter(|package| !members.contains_key(text(package, "name")))
        .filter(|package| {
            let needs = text(package, "rust_version");
            !needs.is_empty() && rust_version(needs) > rust_version(declared)
        })
        .map(|package| {
            format!(
                "{} {} needs Rust {}",
                text(package, "name"),
                text(package, "version"),
                text(package, "rust_version")
            )
        })
        .collect();
    assert!(
        newer.is_empty(),
        "the workspace declares rust-version {declared}, but Cargo.lock resolves \
         dependencies that need newer: {newer:?}; raise rust-version in Cargo.toml (and say \
         so in CHANGELOG.md) or keep the older versions (`cargo update -p NAME --precise`)"
    );
}

#[test]
fn the_crates_users_depend_on_are_published_and_no_other() {
    let metadata = metadata();
    let (published, private): (Vec<_>, Vec<_>) = members(&metadata)
        .into_iter()
        .partition(|(_, package)| is_published(package));
    let unlisted: Vec<&str> = published
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !PUBLISHED.contains(name))
        .collect();
    assert!(
        unlisted.is_empty(),
        "{unlisted:?} would be published: add `publish = false` to their Cargo.toml, or \
         the metadata and a README to publish them (and their names to PUBLISHED here)"
    );
    let withheld: Vec<&str> = private
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| PUBLISHED.contains(name))
        .collect();
    assert!(
        withheld.is_empty(),
        "{withheld:?} say `publish = false`, but users depend on them"
    );
    assert!(
        !private.is_empty(),
        "no package says `publish = false` (the examples, the bench and the end-to-end \
         suites should)"
    );
}

#[test]
fn every_published_crate_has_what_crates_io_and_its_users_need() {
    let metadata = metadata();
    let members = members(&metadata);
    let root = workspace_root();
    let mut wrong = Vec::new();
    for name in PUBLISHED {
        let package = members[name];
        let dir = manifest_dir(package);
        for field in ["description", "repository", "rust_version"] {
            if text(package, field).is_empty() {
                wrong.push(format!("{name}: no {field}"));
            }
        }
        if text(package, "license") != "MIT OR Apache-2.0" {
            wrong.push(format!("{name}: license is not `MIT OR Apache-2.0`"));
        }
        match package["readme"].as_str() {
            Some(readme) if dir.join(readme).is_file() => {}
            _ => wrong.push(format!("{name}: no readme file of its own")),
        }
        for (field, most) in [("keywords", 5), ("categories", 5)] {
            let count = package[field].as_array().map_or(0, Vec::len);
            if !(1..=most).contains(&count) {
                wrong.push(format!(
                    "{name}: {count} {field} (crates.io takes 1 to {most})"
                ));
            }
        }
        // The licence texts travel in each package (links to the workspace's files).
        for file in ["LICENSE-MIT", "LICENSE-APACHE"] {
            let own = std::fs::read(dir.join(file)).ok();
            if own.is_none() || own != std::fs::read(root.join(file)).ok() {
                wrong.push(format!("{name}: {file} is not the workspace's"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn published_crates_name_each_other_by_the_workspace_version() {
    let metadata = metadata();
    let members = members(&metadata);
    let version = text(members["taskscope"], "version");
    let mut wrong = Vec::new();
    for name in PUBLISHED {
        for dependency in members[name]["dependencies"]
            .as_array()
            .expect("dependencies")
        {
            let on = text(dependency, "name");
            let dev = text(dependency, "kind") == "dev";
            if dependency["path"].is_null() || dev {
                continue;
            }
            if !PUBLISHED.contains(&on) {
                wrong.push(format!("{name} depends on {on}, which is not published"));
            }
            let wanted = format!("^{version}");
            if text(dependency, "req") != wanted {
                wrong.push(format!(
                    "{name} depends on {on} as `{}`, not `{wanted}` (a path dependency \
                     needs `version`; workspace.dependencies holds it)",
                    text(dependency, "req")
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn ci_packages_exactly_the_published_crates() {
    let ci = std::fs::read_to_string(workspace_root().join(".ci/run")).expect(".ci/run");
    // The `cargo package` command, with the lines its backslashes continue.
    let command: String = ci
        .lines()
        .skip_while(|line| !line.starts_with("cargo package"))
        .scan(true, |continues, line| {
            let this = continues.then_some(line);
            *continues = line.ends_with('\\');
            this
        })
        .collect::<Vec<_>>()
        .join(" ");
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut packaged: Vec<&str> = words
        .windows(2)
        .filter(|pair| pair[0] == "-p")
        .map(|pair| pair[1])
        .collect();
    packaged.sort_unstable();
    assert_eq!(
        packaged, PUBLISHED,
        ".ci/run's `cargo package` ({command:?}) should name every published crate"
    );
}

#[test]
fn installing_the_cli_gives_the_taskscope_command() {
    let metadata = metadata();
    let binaries: Vec<&str> = members(&metadata)["taskscope-cli"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|target| {
            target["kind"]
                .as_array()
                .is_some_and(|k| k.contains(&"bin".into()))
        })
        .map(|target| text(target, "name"))
        .collect();
    assert_eq!(
        binaries,
        ["taskscope"],
        "`cargo install taskscope-cli` installs these commands"
    );
}
