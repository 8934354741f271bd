//! Addresses to `function (file:line:column)`, expanding inlined calls, with a cache.
//!
//! Debug info is read from each module's file on disk (memory-mapped, parsed lazily by
//! `addr2line`), never from the sampled thread, and only when a stall is reported, so
//! none of this is on a hot path. Function names come from DWARF; where DWARF has only
//! a short name (`debug = "line-tables-only"` builds) or none at all (a stripped libc),
//! the ELF symbol table supplies the full, demangled path of the outermost function.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;

use addr2line::gimli::{EndianSlice, RunTimeEndian};
use object::{Object, ObjectSection};

use crate::Frame;
use crate::modules::{self, Module};

/// Cached addresses beyond this are dropped wholesale (keeps memory bounded in a
/// long-running service that reports many different stalls).
const MAX_CACHED: usize = 64 * 1024;

type Reader = EndianSlice<'static, RunTimeEndian>;

/// One module's debug info and symbols, borrowing from its memory-mapped file.
struct DebugObject {
    // Field order matters: these borrow from `_map` and must drop first.
    ctx: Option<addr2line::Context<Reader>>,
    symbols: object::SymbolMap<object::SymbolMapName<'static>>,
    _map: memmap2::Mmap,
}

impl DebugObject {
    fn load(path: &std::path::Path) -> Option<DebugObject> {
        let file = std::fs::File::open(path).ok()?;
        // SAFETY: the mapping is read-only and private; binaries and libraries are
        // replaced by rename on upgrade, not rewritten in place, so the bytes stay
        // stable while mapped (the same assumption every symbolizer makes).
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        // SAFETY: the slice points into the mapping owned by the returned value, which
        // drops the borrowers (`ctx`, `symbols`) before the mapping (field order).
        let data: &'static [u8] = unsafe { std::slice::from_raw_parts(map.as_ptr(), map.len()) };
        let obj = object::File::parse(data).ok()?;
        let endian = if obj.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let load = |id: addr2line::gimli::SectionId| -> Result<Reader, ()> {
            let bytes = obj
                .section_by_name(id.name())
                .and_then(|s| s.data().ok())
                .unwrap_or(&[]);
            Ok(EndianSlice::new(bytes, endian))
        };
        let ctx = addr2line::gimli::Dwarf::load(load)
            .ok()
            .and_then(|dwarf| addr2line::Context::from_dwarf(dwarf).ok());
        // Uses `.symtab`, or `.dynsym` when the file is stripped.
        let symbols = obj.symbol_map();
        Some(DebugObject {
            ctx,
            symbols,
            _map: map,
        })
    }

    /// Frames for the link-time address `probe`, innermost first.
    fn frames(&self, probe: u64, address: usize) -> Vec<Frame> {
        let symbol = self
            .symbols
            .containing(probe)
            .map(|s| addr2line::demangle_auto(Cow::from(s.name()), None).into_owned());
        let mut out = Vec::new();
        if let Some(ctx) = &self.ctx
            && let Ok(mut iter) = ctx.find_frames(probe).skip_all_loads()
        {
            while let Ok(Some(f)) = iter.next() {
                let function = f
                    .function
                    .as_ref()
                    .and_then(|n| n.demangle().ok())
                    .map(Cow::into_owned);
                let (file, line, column) = match f.location {
                    Some(l) => (l.file.map(str::to_owned), l.line, l.column),
                    None => (None, None, None),
                };
                out.push(Frame {
                    function: function.unwrap_or_default(),
                    file,
                    line,
                    column,
                    address,
                });
            }
        }
        if out.is_empty() {
            out.push(Frame {
                function: String::new(),
                file: None,
                line: None,
                column: None,
                address,
            });
        }
        // The outermost entry is the real (not inlined) function: the symbol table has
        // its full path when DWARF only has a short name or none.
        if let (Some(last), Some(sym)) = (out.last_mut(), symbol)
            && !has_path(&last.function)
        {
            last.function = sym;
        }
        // Inlined frames of `line-tables-only` builds have short names (`lock<u64>`):
        // for library sources, the file's module path says whose they are.
        for f in &mut out {
            if !f.function.is_empty()
                && !has_path(&f.function)
                && let Some(module) = f.file.as_deref().and_then(library_module_path)
            {
                f.function = format!("{module}::{}", f.function);
            }
        }
        out
    }
}

/// Whether a demangled name is a path (`a::b`, `<T as a::B>::c`), not a bare name
/// (`lock<u64>`, `{closure#0}<a::B>`): `::` before any generic arguments.
fn has_path(name: &str) -> bool {
    if name.starts_with('<') {
        return true;
    }
    let head = name.split('<').next().unwrap_or(name);
    head.contains("::")
}

/// The module path of a std or crates.io source file: `/rustc/<hash>/library/std/src/
/// sync/poison/mutex.rs` → `std::sync::poison::mutex`, `…/tokio-1.47.0/src/runtime/
/// park.rs` → `tokio::runtime::park`. `None` for anything else (the user's own files).
fn library_module_path(file: &str) -> Option<String> {
    let (krate, rest) = if let Some((_, after)) = file.split_once("/library/") {
        let (krate, rest) = after.split_once("/src/")?;
        (krate.to_owned(), rest)
    } else {
        let (before, rest) = file.rsplit_once("/src/")?;
        let dir = before.rsplit('/').next()?;
        let (name, version) = dir.rsplit_once('-')?;
        if !version.starts_with(|c: char| c.is_ascii_digit()) || !before.contains("/registry/") {
            return None;
        }
        (name.replace('-', "_"), rest)
    };
    let rest = rest.strip_suffix(".rs")?;
    let mut path = vec![krate];
    path.extend(
        rest.split('/')
            .filter(|seg| !matches!(*seg, "mod" | "lib" | "main"))
            .map(str::to_owned),
    );
    Some(path.join("::"))
}

/// Resolves code addresses to source locations. Create one and keep it: it caches
/// loaded debug info per module and results per address.
pub struct Symbolizer {
    cache: HashMap<usize, Vec<Frame>>,
    objects: HashMap<Vec<u8>, Option<DebugObject>>,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("cached_addresses", &self.cache.len())
            .field("modules", &self.objects.len())
            .finish()
    }
}

impl Default for Symbolizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbolizer {
    /// An empty symbolizer; debug info is loaded on first use of each module.
    pub fn new() -> Self {
        Symbolizer {
            cache: HashMap::new(),
            objects: HashMap::new(),
        }
    }

    /// Symbolizes a stack as returned by [`Sampler::sample`](crate::Sampler::sample)
    /// (innermost first). Inlined calls are expanded, so one address can yield several
    /// frames, innermost first, all carrying that address. Addresses that cannot be
    /// resolved yield one frame named `module+0xoffset` (or `0x…` outside any module).
    pub fn symbolize(&mut self, addrs: &[usize]) -> Vec<Frame> {
        if self.cache.len() > MAX_CACHED {
            self.cache.clear();
        }
        let mut mods: Option<Vec<Module>> = None;
        let mut out = Vec::with_capacity(addrs.len() * 2);
        for &addr in addrs {
            if let Some(frames) = self.cache.get(&addr) {
                out.extend_from_slice(frames);
                continue;
            }
            let mods = mods.get_or_insert_with(modules::snapshot);
            let frames = self.resolve(mods, addr);
            out.extend_from_slice(&frames);
            self.cache.insert(addr, frames);
        }
        out
    }

    fn resolve(&mut self, mods: &[Module], addr: usize) -> Vec<Frame> {
        let unknown = |function: String| {
            vec![Frame {
                function,
                file: None,
                line: None,
                column: None,
                address: addr,
            }]
        };
        let Some(module) = modules::find(mods, addr) else {
            return unknown(format!("{addr:#x}"));
        };
        let obj = self
            .objects
            .entry(module.name.clone())
            .or_insert_with(|| DebugObject::load(&module_file(module)));
        let probe = (addr - module.bias) as u64;
        let mut frames = match obj {
            Some(obj) => obj.frames(probe, addr),
            None => unknown(String::new()),
        };
        for f in &mut frames {
            if f.function.is_empty() {
                f.function = format!("{}+{:#x}", module_display_name(module), probe);
            }
        }
        frames
    }
}

/// The file to read debug info from. The main executable is opened through
/// `/proc/self/exe`, which still works after the file was replaced or deleted.
fn module_file(m: &Module) -> PathBuf {
    if m.name.is_empty() {
        PathBuf::from("/proc/self/exe")
    } else {
        module_path(m)
    }
}

fn module_path(m: &Module) -> PathBuf {
    if m.name.is_empty() {
        std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
    } else {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(&m.name))
    }
}

fn module_display_name(m: &Module) -> String {
    let path = module_path(m);
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths_of_library_files() {
        assert_eq!(
            library_module_path("/rustc/abc/library/std/src/sync/poison/mutex.rs").as_deref(),
            Some("std::sync::poison::mutex")
        );
        assert_eq!(
            library_module_path("/rustc/abc/library/core/src/ops/function.rs").as_deref(),
            Some("core::ops::function")
        );
        assert_eq!(
            library_module_path("/h/.cargo/registry/src/idx/tokio-1.47.1/src/runtime/mod.rs")
                .as_deref(),
            Some("tokio::runtime")
        );
        assert_eq!(library_module_path("/work/app/src/main.rs"), None);
        assert!(has_path("std::thread::sleep"));
        assert!(has_path("<std::fs::File as std::io::Read>::read"));
        assert!(!has_path("lock<u64>"));
        assert!(!has_path("{closure#0}<sampling::Foo>"));
    }
}
