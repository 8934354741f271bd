//! One finding per root cause: a leaked task is reported at its root, the outermost
//! leaked task it descends from, with the leaked tasks below it folded in.
//!
//! A test that starts a server and never stops it leaks the server, every connection
//! handler it spawned and the library's background tasks; reported one by one, most of
//! those findings would point at library code the test's author cannot change. The root
//! (whose parent ended, is the test's or `main`'s body, or is unknown) is the spawn call
//! to fix.

use std::collections::{HashMap, HashSet};

use super::finding::{Descendant, Detail};
use super::policy::FindingKind;
use super::rules::Occurrence;
use crate::model::Model;

/// Folds every `alive_at_shutdown` occurrence of `model` whose parent also leaked into
/// the occurrence of its root. Other occurrences pass through untouched.
pub(crate) fn fold(model: &Model, occurrences: Vec<Occurrence>) -> Vec<Occurrence> {
    let leaked: HashMap<u64, usize> = occurrences
        .iter()
        .enumerate()
        .filter(|(_, o)| o.kind == FindingKind::AliveAtShutdown && o.task_id != 0)
        .map(|(index, o)| (o.task_id, index))
        .collect();
    let roots = roots(model, &leaked);
    let mut folded = vec![false; occurrences.len()];
    let mut below: HashMap<usize, HashMap<&str, u64>> = HashMap::new();
    for (&id, &index) in &leaked {
        let root = roots[&id];
        if root != id {
            folded[index] = true;
            *below
                .entry(leaked[&root])
                .or_default()
                .entry(occurrences[index].spawn_location.as_str())
                .or_default() += 1;
        }
    }
    let below: HashMap<usize, Vec<Descendant>> = below
        .into_iter()
        .map(|(root, sites)| (root, by_site(sites)))
        .collect();
    let mut kept = Vec::with_capacity(occurrences.len());
    for (index, mut occurrence) in occurrences.into_iter().enumerate() {
        if folded[index] {
            continue;
        }
        if let Some(sites) = below.get(&index) {
            // The biggest tree is the most telling example of its group.
            occurrence.weight = sites.iter().map(|d| d.count).sum();
            occurrence.detail = Detail::AliveAtShutdown {
                descendants: sites.clone(),
            };
        }
        kept.push(occurrence);
    }
    kept
}

/// The root of every leaked task: its outermost leaked ancestor (itself when its parent
/// did not leak). Each task is walked once; on a cycle of parents (only a malformed
/// stream makes one) the task that closes it is the root.
fn roots(model: &Model, leaked: &HashMap<u64, usize>) -> HashMap<u64, u64> {
    let mut roots: HashMap<u64, u64> = HashMap::with_capacity(leaked.len());
    let leaked_parent = |id: u64| {
        model
            .task(id)
            .map(|t| t.parent_id)
            .filter(|p| leaked.contains_key(p))
    };
    for &id in leaked.keys() {
        if leaked_parent(id).is_none() {
            // Most leaks: their own root, with no walk to do.
            roots.insert(id, id);
            continue;
        }
        let mut path = Vec::new();
        let mut on_path = HashSet::new();
        let mut current = id;
        let root = loop {
            if let Some(&root) = roots.get(&current) {
                break root;
            }
            path.push(current);
            on_path.insert(current);
            match leaked_parent(current) {
                Some(parent) if !on_path.contains(&parent) => current = parent,
                _ => break current,
            }
        };
        for task in path {
            roots.insert(task, root);
        }
    }
    roots
}

/// Sites with their counts, most first (then by site, for stable reports).
pub(crate) fn by_site(sites: HashMap<&str, u64>) -> Vec<Descendant> {
    let mut sites: Vec<Descendant> = sites
        .into_iter()
        .map(|(site, count)| Descendant {
            spawn_location: site.to_owned(),
            count,
        })
        .collect();
    sites.sort_by(|a, b| {
        (std::cmp::Reverse(a.count), &a.spawn_location)
            .cmp(&(std::cmp::Reverse(b.count), &b.spawn_location))
    });
    sites
}
