//! The probe's layers, held to the table `docs/architecture.md` shows: every folder of
//! `crates/taskscope/src` is a layer of the table, `lib.rs` declares them in its order, and
//! a module imports only from its own layer and the layers below it, except for the
//! upward imports listed in [`UPWARD`], which may only be removed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use taskscope_e2e::workspace_root;

/// Imports that still point up, as `(file under src/, layer it reaches into)`. Each is a
/// debt: when one is gone, its entry must go too (the test says so).
const UPWARD: &[(&str, &str)] = &[
    ("tasks/shared.rs", "detect"),
    ("observe/hooks.rs", "setup"),
    ("aggregate/aggregator.rs", "export"),
    ("export/metrics.rs", "serve"),
    ("export/metrics/http.rs", "serve"),
];

fn probe_src() -> PathBuf {
    workspace_root().join("crates/taskscope/src")
}

/// The layers, bottom up, from the table in `docs/architecture.md` (rows `| `name/` | …`).
fn layers_from_the_docs() -> Vec<String> {
    let doc = std::fs::read_to_string(workspace_root().join("docs/architecture.md")).unwrap();
    let layers: Vec<String> = doc
        .lines()
        .filter_map(|line| {
            let cell = line.trim().strip_prefix("| `")?;
            let (name, _) = cell.split_once("/` |")?;
            Some(name.to_owned())
        })
        .collect();
    assert!(
        layers.len() >= 2,
        "docs/architecture.md has no table of the probe's layers"
    );
    layers
}

/// Every `.rs` file under `dir`, as paths relative to the probe's `src/`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.strip_prefix(probe_src()).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The layers a file's code (not its comments, not its unit tests) names as `crate::L::`.
fn layers_named(source: &str, layers: &[String]) -> BTreeSet<String> {
    let code = source
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .flat_map(|line| {
            line.match_indices("crate::")
                .map(move |(i, _)| &line[i + 7..])
        })
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            layers.contains(&name).then_some(name)
        })
        .collect()
}

#[test]
fn every_folder_of_the_probe_is_a_layer_of_the_table_and_lib_declares_them_in_order() {
    let layers = layers_from_the_docs();
    let mut folders: Vec<String> = std::fs::read_dir(probe_src())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let mut expected = layers.clone();
    expected.sort();
    assert_eq!(
        folders, expected,
        "the probe's folders and the layer table differ"
    );
    for layer in &layers {
        assert!(
            probe_src().join(format!("{layer}.rs")).is_file(),
            "layer {layer} has no {layer}.rs beside its folder"
        );
    }
    let lib = std::fs::read_to_string(probe_src().join("lib.rs")).unwrap();
    let declared: Vec<String> = lib
        .lines()
        .filter_map(|line| line.strip_prefix("mod ")?.strip_suffix(';'))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        declared, layers,
        "lib.rs declares the layers out of the table's order"
    );
}

#[test]
fn the_probe_imports_only_from_its_own_layer_and_the_layers_below() {
    let layers = layers_from_the_docs();
    let rank = |name: &str| layers.iter().position(|l| l == name);
    let mut upward = BTreeSet::new();
    for file in rust_files(&probe_src()) {
        let Some(own) = file
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|c| c.trim_end_matches(".rs").to_owned())
        else {
            continue;
        };
        let Some(own_rank) = rank(&own) else { continue };
        let source = std::fs::read_to_string(probe_src().join(&file)).unwrap();
        for named in layers_named(&source, &layers) {
            if rank(&named).unwrap() > own_rank {
                upward.insert((file.to_string_lossy().into_owned(), named));
            }
        }
    }
    let known: BTreeSet<(String, String)> = UPWARD
        .iter()
        .map(|(f, l)| ((*f).to_owned(), (*l).to_owned()))
        .collect();
    let new: Vec<_> = upward.difference(&known).collect();
    assert!(
        new.is_empty(),
        "imports that point up a layer (move the shared item down, or pass it in): {new:?}"
    );
    let gone: Vec<_> = known.difference(&upward).collect();
    assert!(
        gone.is_empty(),
        "these upward imports are gone: remove them from UPWARD too: {gone:?}"
    );
}
