//! Spawn-location file names, shared instead of copied per task.
//!
//! tokio passes `Location::file()` (a `&'static str`) through tracing as a plain `&str`,
//! so every spawn from one site hands us the same pointer. Keying a small per-thread cache
//! by that pointer (and checking the text on a hit, in case some other emitter reuses
//! memory) turns a per-spawn allocation into a reference-count increment.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Entries per thread before the cache starts over (spawn sites are few; this only bounds
/// a pathological emitter of ever-new strings).
const MAX_ENTRIES: usize = 4096;

thread_local! {
    static FILES: RefCell<HashMap<(usize, usize), Arc<str>>> = RefCell::new(HashMap::new());
}

/// A shared copy of `file`.
pub(crate) fn file(file: &str) -> Arc<str> {
    let key = (file.as_ptr() as usize, file.len());
    FILES
        .try_with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some(known) = cache.get(&key)
                && **known == *file
            {
                return known.clone();
            }
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
            let shared: Arc<str> = Arc::from(file);
            cache.insert(key, shared.clone());
            shared
        })
        .unwrap_or_else(|_| Arc::from(file))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_same_static_name_is_shared() {
        let a = super::file("src/main.rs");
        let b = super::file("src/main.rs");
        assert!(std::sync::Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn reused_memory_with_other_text_is_not_confused() {
        let mut buf = String::from("src/a.rs");
        let a = super::file(&buf);
        buf.replace_range(.., "src/b.rs");
        let b = super::file(&buf);
        assert_eq!(&*a, "src/a.rs");
        assert_eq!(&*b, "src/b.rs");
    }
}
