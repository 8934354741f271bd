//! The loaded ELF modules (executable, shared libraries, vDSO) and where they sit in
//! memory, from `dl_iterate_phdr`.
//!
//! The unwinder reads `.eh_frame` straight from module memory, so it runs with the
//! dynamic loader's lock held ([`with_loader_locked`]): no library can be unmapped by
//! `dlclose` while it reads. glibc's lock for `dl_iterate_phdr` is recursive, which lets
//! the callback list the modules with a nested call.

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
    let bias = info.dlpi_addr as usize;
    let phdrs: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
        &[]
    } else {
        // SAFETY: `dlpi_phdr` points at `dlpi_phnum` program headers of a loaded module.
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
    };
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
            libc::PT_GNU_EH_FRAME => module.eh_frame_hdr = Some((start, ph.p_memsz as usize)),
            _ => {}
        }
    }
    out.push(module);
    0
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
