//! End-to-end: stacks through the code of an executable whose segments are not
//! contiguous. `build.rs` links this test with a gap before its code; glibc's
//! `_dl_find_object` then reports, for a code address, only the executable segment,
//! and the unwind tables lie outside it. The walk must still find them: without them,
//! it falls back to frame pointers, which code built without them (every debug build)
//! does not keep, and loses the frames of the program's own functions.

#![cfg(all(
    target_os = "linux",
    target_env = "gnu",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use taskscope_stack::{Frame, Sampler, Symbolizer, ThreadTarget};

mod support;
use support::wait_until_blocked;

const TIMEOUT: Duration = Duration::from_secs(5);

/// `[start, end)` of the main program's `PT_LOAD` segments at run time, with whether
/// each is executable, and where its `PT_GNU_EH_FRAME` (`.eh_frame_hdr`) is.
fn main_program_layout() -> (Vec<(usize, usize, bool)>, usize) {
    // SAFETY: getauxval only reads the auxiliary vector.
    let (phdr, phnum) = unsafe {
        (
            libc::getauxval(libc::AT_PHDR) as usize,
            libc::getauxval(libc::AT_PHNUM) as usize,
        )
    };
    // SAFETY: AT_PHDR points at the AT_PHNUM program headers of the main program.
    let phdrs = unsafe { std::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, phnum) };
    let bias = phdrs
        .iter()
        .find(|ph| ph.p_type == libc::PT_PHDR)
        .map(|ph| phdr - ph.p_vaddr as usize)
        .expect("a PT_PHDR header");
    let segments = phdrs
        .iter()
        .filter(|ph| ph.p_type == libc::PT_LOAD)
        .map(|ph| {
            let start = bias + ph.p_vaddr as usize;
            (
                start,
                start + ph.p_memsz as usize,
                ph.p_flags & libc::PF_X != 0,
            )
        })
        .collect();
    let eh_frame_hdr = phdrs
        .iter()
        .find(|ph| ph.p_type == libc::PT_GNU_EH_FRAME)
        .map(|ph| bias + ph.p_vaddr as usize)
        .expect("a PT_GNU_EH_FRAME header");
    (segments, eh_frame_hdr)
}

#[test]
fn this_executable_leaves_an_unmapped_page_between_its_unwind_tables_and_its_code() {
    let page = 4096;
    let (segments, eh_frame_hdr) = main_program_layout();
    let tables = segments
        .iter()
        .find(|(start, end, _)| (*start..*end).contains(&eh_frame_hdr))
        .expect("a segment holds .eh_frame_hdr");
    let code = segments
        .iter()
        .find(|(start, _, exec)| *exec && *start > tables.1)
        .expect("code after the unwind tables");
    assert!(
        !tables.2,
        "the unwind tables should be in a read-only segment: {segments:x?}"
    );
    assert!(
        tables.1.next_multiple_of(page) < code.0 / page * page,
        "build.rs should leave a gap before the code: {segments:x?}"
    );
}

#[inline(never)]
fn inner_waiter(report: &Sender<ThreadTarget>, release: &Receiver<()>) {
    report.send(Sampler::current_thread()).unwrap();
    // Until released, or until the test has failed (and dropped the sender).
    release.recv().ok();
}

#[inline(never)]
fn outer_caller(report: Sender<ThreadTarget>, release: Receiver<()>) {
    inner_waiter(&report, &release);
    std::hint::black_box(());
}

fn position(frames: &[Frame], name: &str) -> Option<usize> {
    frames.iter().position(|f| f.function.ends_with(name))
}

#[test]
fn a_stack_through_the_executables_own_code_keeps_every_caller() {
    let sampler = Sampler::install().expect("sampling is available on this machine");
    let (report, target) = channel();
    let (release, released) = channel();
    let thread = std::thread::spawn(move || outer_caller(report, released));
    let target = target.recv().unwrap();
    wait_until_blocked(target.tid(), "futex");
    let addrs = sampler.sample(&target, TIMEOUT).expect("sample");
    release.send(()).unwrap();
    thread.join().unwrap();

    let frames = Symbolizer::new().symbolize(&addrs);
    let listing: String = frames
        .iter()
        .map(|f| format!("  {f} [{:#x}]\n", f.address))
        .collect();
    let inner = position(&frames, "inner_waiter");
    let outer = position(&frames, "outer_caller");
    assert!(
        matches!((inner, outer), (Some(i), Some(o)) if i < o),
        "inner_waiter, then outer_caller, should be on the stack:\n{listing}"
    );
    let entry = frames[outer.unwrap()..]
        .iter()
        .any(|f| f.function.contains("thread_start") || f.function.contains("start_thread"));
    assert!(
        entry,
        "the walk should reach the thread's entry:\n{listing}"
    );
}
