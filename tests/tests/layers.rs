//! The probe's layers, held to the table `docs/architecture.md` shows: every folder of
//! `crates/taskscope/src` is a layer of the table, `lib.rs` declares them in its order, a
//! module imports only from its own layer and the layers below it, except for the upward
//! imports listed in [`UPWARD`], which may only be removed, and no two modules import each
//! other, however indirectly (the graph of files and the `crate::…` paths they name has no
//! cycle).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use taskscope_e2e::workspace_root;

/// Imports that still point up, as `(file under src/, layer it reaches into)`. Each is a
/// debt: when one is gone, its entry must go too (the test says so).
const UPWARD: &[(&str, &str)] = &[];

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

/// A file's code: not its comments, not its unit tests.
fn code_of(source: &str) -> String {
    let code = source
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The layers a file's code names as `crate::L::`.
fn layers_named(source: &str, layers: &[String]) -> BTreeSet<String> {
    code_of(source)
        .lines()
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

/// Every `crate::…` path in `code`, as its segments after `crate`; a group (`crate::a::{b,
/// c::D}`) gives one path per member.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut rest = &code[i + "crate::".len()..];
        path_members(&mut rest, Vec::new(), &mut paths);
    }
    paths
}

/// Reads one path (or group of paths) from the start of `rest`, after `prefix`.
fn path_members(rest: &mut &str, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    loop {
        *rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            *rest = group;
            loop {
                path_members(rest, prefix.clone(), out);
                *rest = rest.trim_start();
                match rest.chars().next() {
                    Some(',') => *rest = &rest[1..],
                    Some('}') => {
                        *rest = &rest[1..];
                        return;
                    }
                    _ => return,
                }
                if rest.trim_start().starts_with('}') {
                    *rest = &rest.trim_start()[1..];
                    return;
                }
            }
        }
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            break;
        }
        *rest = &rest[ident.len()..];
        prefix.push(ident);
        match rest.strip_prefix("::") {
            Some(more) => *rest = more,
            None => break,
        }
    }
    if !prefix.is_empty() {
        out.push(prefix);
    }
}

/// Which module files each file's code names: a path counts for the longest prefix of it
/// that is a module (`crate::tasks::threads::with_local` names `tasks/threads.rs`). A file
/// naming itself is no edge.
fn module_graph(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    files
        .iter()
        .map(|(file, source)| {
            let named = crate_paths(&code_of(source))
                .into_iter()
                .filter_map(|path| {
                    (1..=path.len())
                        .rev()
                        .map(|n| format!("{}.rs", path[..n].join("/")))
                        .find(|module| files.contains_key(module))
                })
                .filter(|module| module != file)
                .collect();
            (file.clone(), named)
        })
        .collect()
}

/// A cycle of the graph (its files in order, the first repeated at the end), if any.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        marks.insert(node, Mark::Open);
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next.as_str()) {
                Some(Mark::Open) => {
                    let from = stack.iter().position(|n| *n == next).unwrap();
                    let mut cycle: Vec<String> =
                        stack[from..].iter().map(|n| (*n).to_owned()).collect();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(cycle) = visit(next, graph, marks, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph.keys().find_map(|node| {
        if marks.contains_key(node.as_str()) {
            return None;
        }
        visit(node, graph, &mut marks, &mut Vec::new())
    })
}

#[test]
fn no_two_modules_of_the_probe_import_each_other() {
    let files: BTreeMap<String, String> = rust_files(&probe_src())
        .into_iter()
        .map(|file| {
            let source = std::fs::read_to_string(probe_src().join(&file)).unwrap();
            (file.to_string_lossy().into_owned(), source)
        })
        .collect();
    let graph = module_graph(&files);
    assert!(
        graph.values().map(BTreeSet::len).sum::<usize>() > 100,
        "the probe's modules name too few others: the reading of `crate::` paths is broken"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "these modules import each other (move what both need into a module of its own, \
             or pass it in): {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_cycle_check_finds_a_cycle_through_a_group_import_and_none_without_it() {
    let file = |name: &str, source: &str| (name.to_owned(), source.to_owned());
    let mut files: BTreeMap<String, String> = [
        file("a.rs", "use crate::b::Thing;\n"),
        file(
            "b.rs",
            "// use crate::a::Ignored;\nuse crate::c::{\n    self,\n    d::{E, F},\n};\n",
        ),
        file("c.rs", "pub mod d;\nfn f() { crate::c::d::E::new(); }\n"),
        file("c/d.rs", "use crate::{base::X, a};\n"),
        file("base.rs", "fn here() { crate::base::X; }\n"),
    ]
    .into_iter()
    .collect();
    let graph = module_graph(&files);
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(graph["a.rs"], set(&["b.rs"]));
    assert_eq!(graph["b.rs"], set(&["c.rs", "c/d.rs"]));
    assert_eq!(graph["c.rs"], set(&["c/d.rs"]));
    assert_eq!(graph["c/d.rs"], set(&["a.rs", "base.rs"]));
    assert_eq!(graph["base.rs"], set(&[]));
    let cycle = find_cycle(&graph).expect("a -> b -> c/d -> a is a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.contains(&"c/d.rs".to_owned()), "{cycle:?}");
    files.insert("c/d.rs".to_owned(), "use crate::base::X;\n".to_owned());
    assert_eq!(find_cycle(&module_graph(&files)), None);
}
