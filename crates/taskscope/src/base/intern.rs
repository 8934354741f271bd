//! Spawn-location file names, kept once for the life of the process.
//!
//! A task's cell names the file of its spawn site. Copying the name per task costs an
//! allocation per spawn, and sharing it through a reference count makes every spawn and
//! every freed cell of one site touch the same counter from different threads. A spawn
//! site's file name is a `&'static str` in the program already (`Location::file`), and the
//! set of them is small and fixed, so the hooks route uses it as it is and the tracing
//! route (which receives it as a plain `&str` field) keeps one leaked copy per distinct
//! name, found through a per-thread cache keyed by the string's address.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Entries per thread before the cache starts over.
const MAX_CACHED: usize = 4096;
/// Distinct names ever kept. A program has a few hundred spawn sites at most; past this,
/// something is producing ever-new names and they are no longer kept.
const MAX_NAMES: usize = 16 * 1024;

/// Interned file names, shared by every thread's spawns (the names live for the process).
static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);

thread_local! {
    static CACHE: RefCell<HashMap<(usize, usize), &'static str>> = RefCell::new(HashMap::new());
}

/// A copy of `file` that lives as long as the process.
pub(crate) fn file(file: &str) -> &'static str {
    let key = (file.as_ptr() as usize, file.len());
    CACHE
        .try_with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some(&known) = cache.get(&key)
                && known == file
            {
                return known;
            }
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            let kept = keep(file);
            cache.insert(key, kept);
            kept
        })
        .unwrap_or_else(|_| keep(file))
}

fn keep(file: &str) -> &'static str {
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(&known) = names.get(file) {
        return known;
    }
    if names.len() >= MAX_NAMES {
        return "<too many spawn files>";
    }
    let kept: &'static str = Box::leak(file.into());
    names.insert(kept);
    kept
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_same_name_is_kept_once() {
        let a = super::file("src/main.rs");
        let b = super::file(&String::from("src/main.rs"));
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn reused_memory_with_other_text_is_not_confused() {
        let mut buf = String::from("src/a.rs");
        let a = super::file(&buf);
        buf.replace_range(.., "src/b.rs");
        let b = super::file(&buf);
        assert_eq!(a, "src/a.rs");
        assert_eq!(b, "src/b.rs");
    }
}
