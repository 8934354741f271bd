//! Turning one captured context (registers + a copy of the live stack) into a list of
//! code addresses, on the sampler's thread.
//!
//! Each step uses the module's `.eh_frame` unwind rules (the same tables that panics
//! unwind with; always present on Linux, whatever the debug-info or frame-pointer
//! settings), so frames of functions built without frame pointers — libc's
//! `nanosleep`/`read`/`futex` wrappers, an optimized std — are not lost. Where a code
//! address has no unwind rules, it falls back to the frame-pointer chain.
//!
//! Every memory read goes to the *copy* of the stack, never to the target's memory:
//! an address outside the copied range (below the stack pointer at interrupt time,
//! above the stack's top or the copy cap), misaligned, or a frame whose canonical frame
//! address does not grow towards the stack top ends the walk. At most
//! [`MAX_DEPTH`] frames are produced.

use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, NativeEndian, Pointer, Register, RegisterRule,
    UnwindContext, UnwindSection, UnwindTableRow,
};

use crate::arch;
use crate::modules::{self, FindObject, Module, UnwindTables};
use crate::signal::Capture;

/// Most frames one walk produces.
pub(crate) const MAX_DEPTH: usize = 128;

type Regs = [Option<u64>; arch::NREGS];

/// Reusable unwinder state (allocated once per [`crate::Sampler`]).
pub(crate) struct Walker {
    ctx: Box<UnwindContext<usize>>,
    find_object: Option<FindObject>,
}

impl Walker {
    pub(crate) fn new() -> Self {
        Walker {
            ctx: Box::new(UnwindContext::new()),
            find_object: FindObject::resolve(),
        }
    }

    /// Forces the `dl_iterate_phdr` path (for tests of the fallback).
    #[cfg(test)]
    pub(crate) fn without_find_object() -> Self {
        Walker {
            ctx: Box::new(UnwindContext::new()),
            find_object: None,
        }
    }

    /// Walks `capture`. The first address is the interrupted program counter; each
    /// later one is a return address minus one, i.e. inside the call instruction, so
    /// that symbolizing it names the line of the call.
    pub(crate) fn walk(&mut self, capture: &Capture<'_>) -> Vec<usize> {
        let stack = Stack {
            base: capture.stack_base as u64,
            bytes: capture.stack,
        };
        let mut regs: Regs = capture.regs.map(Some);
        let mut out = Vec::with_capacity(32);
        let Some(mut pc) = regs[arch::PC] else {
            return out;
        };
        out.push(pc as usize);
        let ctx = &mut self.ctx;
        let mut run = |find: &mut dyn FnMut(u64) -> Option<UnwindTables>| {
            while out.len() < MAX_DEPTH {
                let first = out.len() == 1;
                // A return address may be just past the end of a `noreturn` call's
                // function: look up the call instruction instead.
                let lookup = if first { pc } else { pc.wrapping_sub(1) };
                let Some(sp) = regs[arch::SP] else { break };
                let step = match find(lookup) {
                    Some(tables) => dwarf_step(ctx, &tables, lookup, &regs, &stack),
                    None => Step::NoRules,
                };
                let (next, ra) = match step {
                    Step::Caller(next, ra) => (next, ra),
                    Step::Outermost => break,
                    Step::NoRules => match fp_step(&regs, &stack) {
                        Some(s) => s,
                        None => break,
                    },
                };
                let Some(next_sp) = next[arch::SP] else { break };
                // The stack grows down, so callers' frames are at higher addresses. Only
                // a leaf interrupted before it set up a frame may share its caller's
                // stack pointer (aarch64 leaves keep the return address in x30).
                if next_sp < sp || (next_sp == sp && !first) {
                    break;
                }
                let ra = arch::strip_pointer_auth(ra);
                if ra == 0 {
                    break;
                }
                out.push(ra as usize - 1);
                pc = ra;
                regs = next;
                regs[arch::PC] = Some(ra);
            }
        };
        match self.find_object {
            Some(fo) => run(&mut |pc| fo.lookup(pc as usize)),
            None => modules::with_loader_locked(|mods| {
                run(&mut |pc| modules::find(mods, pc as usize).and_then(Module::unwind_tables))
            }),
        }
        out
    }
}

/// The copied stack: `bytes[i]` was at address `base + i` in the target thread.
struct Stack<'a> {
    base: u64,
    bytes: &'a [u8],
}

impl Stack<'_> {
    fn top(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    /// The aligned 8-byte word at `addr`, if it lies inside the copy.
    fn read(&self, addr: u64) -> Option<u64> {
        if !addr.is_multiple_of(8) || addr < self.base {
            return None;
        }
        let off = usize::try_from(addr - self.base).ok()?;
        let word = self.bytes.get(off..off.checked_add(8)?)?;
        Some(u64::from_ne_bytes(word.try_into().ok()?))
    }
}

// Returned by value once per frame; boxing would allocate on every step.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// The caller's registers and the return address into it.
    Caller(Regs, u64),
    /// The unwind rules mark this as the first frame of the thread.
    Outermost,
    /// No usable unwind rules for this address.
    NoRules,
}

fn reg(regs: &Regs, r: Register) -> Option<u64> {
    regs.get(usize::from(r.0)).copied().flatten()
}

/// One step using `.eh_frame`: find the FDE for `pc`, compute the canonical frame
/// address (CFA), and restore the return address and callee-saved registers from it.
fn dwarf_step(
    ctx: &mut UnwindContext<usize>,
    tables: &UnwindTables,
    pc: u64,
    regs: &Regs,
    stack: &Stack<'_>,
) -> Step {
    let hdr_addr = tables.hdr;
    // SAFETY: `tables` describes mapped, read-only unwind data of a loaded module
    // (see `modules` for why it stays mapped while we read).
    let hdr = unsafe { std::slice::from_raw_parts(hdr_addr as *const u8, tables.hdr_len) };
    let bases = BaseAddresses::default().set_eh_frame_hdr(hdr_addr as u64);
    let Ok(parsed) = EhFrameHdr::new(hdr, NativeEndian).parse(&bases, 8) else {
        return Step::NoRules;
    };
    let Pointer::Direct(eh_addr) = parsed.eh_frame_ptr() else {
        return Step::NoRules;
    };
    let eh_addr_usize = eh_addr as usize;
    if eh_addr_usize < tables.start || eh_addr_usize >= tables.end {
        return Step::NoRules;
    }
    // SAFETY: as above; `.eh_frame` lies within the same mapped module, before `end`.
    let eh =
        unsafe { std::slice::from_raw_parts(eh_addr as *const u8, tables.end - eh_addr_usize) };
    let eh_frame = EhFrame::new(eh, NativeEndian);
    let bases = bases.set_eh_frame(eh_addr);
    let fde = match parsed.table() {
        Some(table) => table.fde_for_address(&eh_frame, &bases, pc, EhFrame::cie_from_offset),
        None => eh_frame.fde_for_address(&bases, pc, EhFrame::cie_from_offset),
    };
    let Ok(fde) = fde else {
        return Step::NoRules;
    };
    let ra_reg = fde.cie().return_address_register();
    let Ok(row) = fde.unwind_info_for_address(&eh_frame, &bases, ctx, pc) else {
        return Step::NoRules;
    };
    caller(row, ra_reg, regs, stack)
}

/// The caller's registers and return address by the unwind rules of `row`: the canonical
/// frame address (CFA) first, then every register with a rule, read from the stack's copy.
fn caller(row: &UnwindTableRow<usize>, ra_reg: Register, regs: &Regs, stack: &Stack<'_>) -> Step {
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => match reg(regs, *register) {
            Some(v) => v.wrapping_add(*offset as u64),
            None => return Step::NoRules,
        },
        // CFA expressions appear in signal trampolines and PLT stubs: stop there.
        CfaRule::Expression(_) => return Step::NoRules,
    };
    if cfa < stack.base || cfa > stack.top() {
        return Step::NoRules;
    }
    let eval = |rule: &RegisterRule<usize>, own: Option<u64>| -> Option<u64> {
        match *rule {
            RegisterRule::SameValue => own,
            RegisterRule::Offset(n) => stack.read(cfa.wrapping_add(n as u64)),
            RegisterRule::ValOffset(n) => Some(cfa.wrapping_add(n as u64)),
            RegisterRule::Register(r) => reg(regs, r),
            RegisterRule::Constant(c) => Some(c),
            _ => None,
        }
    };
    let ra = match row.register(ra_reg) {
        Some(RegisterRule::Undefined) => return Step::Outermost,
        Some(rule) => eval(&rule, reg(regs, ra_reg)),
        // No rule: the return address is still in its register (aarch64 leaf). On
        // x86_64 the column is the program counter itself, which would loop.
        None if usize::from(ra_reg.0) != arch::PC => reg(regs, ra_reg),
        None => None,
    };
    let Some(ra) = ra else {
        return Step::NoRules;
    };
    // Registers without a rule keep their value (callee-saved by the ABI).
    let mut next = *regs;
    for (r, rule) in row.registers() {
        if let Some(slot) = next.get_mut(usize::from(r.0)) {
            *slot = eval(rule, reg(regs, *r));
        }
    }
    next[arch::SP] = Some(cfa);
    Step::Caller(next, ra)
}

/// One step along the frame-pointer chain: `[fp]` is the caller's frame pointer and
/// `[fp + 8]` the return address, on both x86_64 and aarch64.
fn fp_step(regs: &Regs, stack: &Stack<'_>) -> Option<(Regs, u64)> {
    let fp = regs[arch::FP]?;
    let sp = regs[arch::SP]?;
    if fp < sp || !fp.is_multiple_of(8) {
        return None;
    }
    let saved_fp = stack.read(fp)?;
    let ra = stack.read(fp.checked_add(8)?)?;
    if saved_fp != 0 && saved_fp <= fp {
        return None;
    }
    let mut next = *regs;
    next[arch::FP] = Some(saved_fp);
    next[arch::SP] = Some(fp + 16);
    Some((next, ra))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Exclusive, request};
    use std::time::Duration;

    #[test]
    fn both_ways_of_finding_unwind_tables_give_the_same_stack() {
        assert!(
            FindObject::resolve().is_some(),
            "this glibc should have _dl_find_object"
        );
        let sampler = crate::Sampler::install().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            tx.send(crate::Sampler::current_thread()).unwrap();
            std::thread::sleep(Duration::from_millis(500));
        });
        let target = rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        // The only sampling in this test binary, so no lock is needed to own the mailbox.
        let exclusive = Exclusive(());
        let capture = request(
            &exclusive,
            sampler.signal(),
            target.tid,
            target.stack,
            1,
            Duration::from_secs(5),
            &target.alive,
        )
        .ok()
        .expect("sample");
        let lock_free = Walker::new().walk(&capture);
        let locked = Walker::without_find_object().walk(&capture);
        assert_eq!(lock_free, locked);
        assert!(lock_free.len() > 5, "{lock_free:x?}");
        handle.join().unwrap();
    }
}
