//! The loaded ELF modules (executable, shared libraries, vDSO) and where their unwind
//! tables sit in memory.
//!
//! The unwinder reads `.eh_frame_hdr`/`.eh_frame` straight from module memory. Two ways
//! to find them for a code address:
//!
//! * [`FindObject`]: glibc's `_dl_find_object` (2.35+, looked up at run time so older
//!   systems still load us). Lock-free, so a walk never waits for a thread that holds
//!   the loader lock — which the stalled thread may well do (stuck in `dlopen`, or in a
//!   library constructor). Like libgcc's unwinder, which uses the same call, it assumes
//!   the library is not `dlclose`d during the microseconds of the walk.
//! * [`with_loader_locked`]: older glibc. The walk runs inside a `dl_iterate_phdr`
//!   callback, holding the loader lock, so nothing is unmapped under it; a walk then
//!   waits while another thread is inside `dlopen`/`dlclose`. glibc's lock is recursive,
//!   which lets the callback list the modules with a nested call.
//!
//! [`snapshot`] lists modules for symbolization, which reads files, not memory.

use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

/// One `PT_LOAD` segment, at its runtime address.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) exec: bool,
}

/// One loaded module.
#[derive(Clone, Debug)]
pub(crate) struct Module {
    /// Path as the loader knows it; empty for the main executable.
    pub(crate) name: Vec<u8>,
    /// Runtime address minus link-time address.
    pub(crate) bias: usize,
    pub(crate) segments: Vec<Segment>,
    /// Runtime address and size of `.eh_frame_hdr` (`PT_GNU_EH_FRAME`).
    pub(crate) eh_frame_hdr: Option<(usize, usize)>,
}

impl Module {
    /// Whether `addr` is inside one of this module's executable segments.
    pub(crate) fn contains_code(&self, addr: usize) -> bool {
        self.segments
            .iter()
            .any(|s| s.exec && s.start <= addr && addr < s.end)
    }

    /// The segment (any permissions) that contains `addr`.
    pub(crate) fn segment_of(&self, addr: usize) -> Option<&Segment> {
        self.segments
            .iter()
            .find(|s| s.start <= addr && addr < s.end)
    }
}

/// Finds the module whose code contains `addr`.
pub(crate) fn find(modules: &[Module], addr: usize) -> Option<&Module> {
    modules.iter().find(|m| m.contains_code(addr))
}

/// Lists the loaded modules (a snapshot; fine for symbolization, which reads files).
pub(crate) fn snapshot() -> Vec<Module> {
    let mut out = Vec::new();
    // SAFETY: the callback only reads the loader-provided `dl_phdr_info` during the
    // call, and `data` points at `out`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(collect), (&raw mut out).cast()) };
    out
}

unsafe extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: `data` is the `Vec<Module>` passed by `snapshot`.
    let out = unsafe { &mut *data.cast::<Vec<Module>>() };
    // SAFETY: the loader passes a valid `dl_phdr_info` for the duration of the call.
    let info = unsafe { &*info };
    let name = if info.dlpi_name.is_null() {
        Vec::new()
    } else {
        // SAFETY: non-null `dlpi_name` is a NUL-terminated string owned by the loader.
        unsafe { CStr::from_ptr(info.dlpi_name) }
            .to_bytes()
            .to_vec()
    };
    let phdrs: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
        &[]
    } else {
        // SAFETY: `dlpi_phdr` points at `dlpi_phnum` program headers of a loaded module.
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
    };
    out.push(Module::from_phdrs(name, info.dlpi_addr as usize, phdrs));
    0
}

impl Module {
    /// The module whose program headers are `phdrs`, loaded at `bias`.
    fn from_phdrs(name: Vec<u8>, bias: usize, phdrs: &[libc::Elf64_Phdr]) -> Module {
        let mut module = Module {
            name,
            bias,
            segments: Vec::new(),
            eh_frame_hdr: None,
        };
        for ph in phdrs {
            let start = bias.wrapping_add(ph.p_vaddr as usize);
            match ph.p_type {
                libc::PT_LOAD => module.segments.push(Segment {
                    start,
                    end: start.wrapping_add(ph.p_memsz as usize),
                    exec: ph.p_flags & libc::PF_X != 0,
                }),
                libc::PT_GNU_EH_FRAME => {
                    module.eh_frame_hdr = Some((start, ph.p_memsz as usize));
                }
                _ => {}
            }
        }
        module
    }

    /// The main program, from the program headers the kernel mapped and reported in the
    /// auxiliary vector: no loader call, so no loader lock. `None` without a `PT_PHDR`
    /// header (which says where the headers themselves were linked, hence the bias).
    fn main_program() -> Option<Module> {
        // SAFETY: getauxval only reads the auxiliary vector.
        let (phdr, phnum) = unsafe {
            (
                libc::getauxval(libc::AT_PHDR) as usize,
                libc::getauxval(libc::AT_PHNUM) as usize,
            )
        };
        if phdr == 0 || phnum == 0 {
            return None;
        }
        // SAFETY: AT_PHDR points at the AT_PHNUM program headers of the main program,
        // mapped for the life of the process.
        let phdrs = unsafe { std::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, phnum) };
        let bias = phdrs
            .iter()
            .find(|ph| ph.p_type == libc::PT_PHDR)
            .map(|ph| phdr.wrapping_sub(ph.p_vaddr as usize))?;
        Some(Module::from_phdrs(Vec::new(), bias, phdrs))
    }
}

/// Runs `f` with the list of loaded modules while holding the loader's lock, so module
/// memory stays mapped while `f` reads it. `f` must not load or unload libraries.
pub(crate) fn with_loader_locked<R, F: FnOnce(&[Module]) -> R>(f: F) -> R {
    struct Call<F, R> {
        f: Option<F>,
        result: Option<std::thread::Result<R>>,
    }

    unsafe extern "C" fn once<F: FnOnce(&[Module]) -> R, R>(
        _info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the `Call` passed below, alive for the whole iteration.
        let call = unsafe { &mut *data.cast::<Call<F, R>>() };
        if let Some(f) = call.f.take() {
            // Nested iteration: allowed, the loader lock is recursive.
            let modules = snapshot();
            call.result = Some(catch_unwind(AssertUnwindSafe(|| f(&modules))));
        }
        1 // stop after the first module: `f` has run
    }

    let mut call = Call {
        f: Some(f),
        result: None,
    };
    // SAFETY: the callback casts `data` back to the `Call` it was given; no unwinding
    // crosses the FFI boundary (panics are caught and resumed below).
    unsafe { libc::dl_iterate_phdr(Some(once::<F, R>), (&raw mut call).cast()) };
    match call.result {
        Some(Ok(r)) => r,
        Some(Err(panic)) => resume_unwind(panic),
        // No module at all (cannot happen with a dynamic loader): run unlocked.
        None => (call.f.take().expect("not yet run"))(&snapshot()),
    }
}

/// Where one module's unwind tables are: `.eh_frame_hdr` at `hdr..hdr + hdr_len`, and
/// `.eh_frame` somewhere in `start..end` (its length is not recorded anywhere).
#[derive(Clone, Copy, Debug)]
pub(crate) struct UnwindTables {
    pub(crate) hdr: usize,
    pub(crate) hdr_len: usize,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Module {
    /// The unwind tables of this module (`.eh_frame` is placed in the same read-only
    /// segment as `.eh_frame_hdr` by the GNU and LLVM linkers).
    pub(crate) fn unwind_tables(&self) -> Option<UnwindTables> {
        let (hdr, hdr_len) = self.eh_frame_hdr?;
        let seg = self.segment_of(hdr)?;
        Some(UnwindTables {
            hdr,
            hdr_len,
            start: seg.start,
            end: seg.end,
        })
    }
}

/// `struct dl_find_object` of glibc on x86_64 and aarch64 (neither has the optional
/// `dlfo_eh_dbase`/`dlfo_eh_count` members).
#[repr(C)]
struct DlFindObject {
    flags: u64,
    map_start: *mut libc::c_void,
    map_end: *mut libc::c_void,
    link_map: *mut libc::c_void,
    eh_frame: *mut libc::c_void,
    reserved: [u64; 7],
}

type FindObjectFn = unsafe extern "C" fn(*mut libc::c_void, *mut DlFindObject) -> libc::c_int;

/// glibc's lock-free `_dl_find_object`, if this glibc has it.
#[derive(Clone, Copy)]
pub(crate) struct FindObject {
    find: FindObjectFn,
    /// The main program's unwind tables, for when `_dl_find_object`'s mapping does not
    /// contain them (see [`FindObject::lookup`]).
    main: Option<UnwindTables>,
}

impl FindObject {
    pub(crate) fn resolve() -> Option<FindObject> {
        // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the global scope.
        let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr()) };
        if sym.is_null() {
            return None;
        }
        Some(FindObject {
            // SAFETY: glibc declares `int _dl_find_object(void *, struct dl_find_object *)`.
            find: unsafe { std::mem::transmute::<*mut libc::c_void, FindObjectFn>(sym) },
            main: Module::main_program().and_then(|main| main.unwind_tables()),
        })
    }

    /// The unwind tables of the module containing `pc`.
    ///
    /// The mapping glibc reports is not always the whole module: a main program whose
    /// segments are not contiguous (a page left unmapped between the read-only segment
    /// and `.text`, which the linker leaves or not depending on the sizes of what comes
    /// before) is reported segment by segment, so the mapping of a code address is just
    /// the executable segment, and `.eh_frame_hdr` lies outside it, in the read-only one.
    /// Those tables are then the main program's, whose segments are known from its
    /// program headers.
    pub(crate) fn lookup(&self, pc: usize) -> Option<UnwindTables> {
        // SAFETY: all-zero is a valid value of this plain C struct.
        let mut out: DlFindObject = unsafe { std::mem::zeroed() };
        // SAFETY: `out` is a writable struct of the size glibc expects; the function only
        // reads loader data structures and fills `out`.
        if unsafe { (self.find)(pc as *mut libc::c_void, &mut out) } != 0 || out.eh_frame.is_null()
        {
            return None;
        }
        let hdr = out.eh_frame as usize;
        let (start, end) = match (out.map_start as usize, out.map_end as usize) {
            (start, end) if start <= hdr && hdr < end => (start, end),
            _ => {
                let main = self.main.filter(|main| main.hdr == hdr)?;
                (main.start, main.end)
            }
        };
        // SAFETY: `hdr` points at the module's mapped PT_GNU_EH_FRAME segment; the
        // length computed from its header is checked against the mapping's end.
        let hdr_len = unsafe { eh_frame_hdr_len(hdr, end)? };
        Some(UnwindTables {
            hdr,
            hdr_len,
            start,
            end,
        })
    }
}

/// Length of the `.eh_frame_hdr` at `hdr` (header plus binary-search table), computed
/// from its encodings, or `None` if it is malformed or would run past `end`.
///
/// # Safety
/// `hdr..hdr + 4` must be readable, and so must everything below `end` that the header
/// claims.
unsafe fn eh_frame_hdr_len(hdr: usize, end: usize) -> Option<usize> {
    fn size(enc: u8) -> Option<usize> {
        match enc & 0x0f {
            0x00 => Some(std::mem::size_of::<usize>()), // absptr
            0x02 | 0x0a => Some(2),                     // udata2, sdata2
            0x03 | 0x0b => Some(4),                     // udata4, sdata4
            0x04 | 0x0c => Some(8),                     // udata8, sdata8
            _ => None,
        }
    }
    if end.checked_sub(hdr)? < 4 {
        return None;
    }
    // SAFETY: four bytes at `hdr` are readable (caller).
    let head = unsafe { std::slice::from_raw_parts(hdr as *const u8, 4) };
    let (version, ptr_enc, count_enc, table_enc) = (head[0], head[1], head[2], head[3]);
    if version != 1 || count_enc == 0xff || table_enc == 0xff {
        return None;
    }
    let ptr_len = if ptr_enc == 0xff { 0 } else { size(ptr_enc)? };
    let count_len = size(count_enc)?;
    let count_at = hdr + 4 + ptr_len;
    if count_at + count_len > end {
        return None;
    }
    // SAFETY: inside `hdr..end`, checked just above.
    let count_bytes = unsafe { std::slice::from_raw_parts(count_at as *const u8, count_len) };
    let mut count = 0u64;
    for (i, b) in count_bytes.iter().enumerate() {
        count |= u64::from(*b) << (8 * i); // little endian on both targets
    }
    let table = usize::try_from(count)
        .ok()?
        .checked_mul(2 * size(table_enc)?)?;
    let len = (4 + ptr_len + count_len).checked_add(table)?;
    (hdr.checked_add(len)? <= end).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_program_read_from_its_headers_is_the_one_the_loader_lists_first() {
        let from_headers = Module::main_program().expect("a PT_PHDR header");
        let listed = snapshot();
        let from_loader = listed.first().expect("the main program");
        assert_eq!(from_headers.bias, from_loader.bias);
        assert_eq!(from_headers.eh_frame_hdr, from_loader.eh_frame_hdr);
        let (a, b) = (
            from_headers.unwind_tables().expect("unwind tables"),
            from_loader.unwind_tables().expect("unwind tables"),
        );
        assert_eq!(
            (a.hdr, a.hdr_len, a.start, a.end),
            (b.hdr, b.hdr_len, b.start, b.end)
        );
        let here = Module::main_program as fn() -> Option<Module> as usize;
        assert!(from_headers.contains_code(here));
    }

    #[test]
    fn lookup_finds_the_main_programs_tables_like_the_loader_does() {
        let find_object = FindObject::resolve().expect("this glibc should have _dl_find_object");
        let here = Module::main_program as fn() -> Option<Module> as usize;
        let found = find_object
            .lookup(here)
            .expect("unwind tables for this test's own code");
        let listed = snapshot();
        let expected = find(&listed, here)
            .and_then(Module::unwind_tables)
            .expect("the module of this code has unwind tables");
        assert_eq!(found.hdr, expected.hdr);
        assert!(found.start <= found.hdr && found.hdr + found.hdr_len <= found.end);
    }
}
