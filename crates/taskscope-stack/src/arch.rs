//! The few architecture facts the sampler needs: which registers to save from the
//! interrupted context, and their DWARF numbers so the unwinder can apply `.eh_frame`
//! rules to them.

#[cfg(target_arch = "x86_64")]
mod imp {
    /// Registers saved per sample, indexed by DWARF register number (0..=15), plus the
    /// program counter at [`PC`] (DWARF 16, the return-address column).
    pub(crate) const NREGS: usize = 17;
    /// Index of the program counter in the saved registers.
    pub(crate) const PC: usize = 16;
    /// DWARF number of the stack pointer (`rsp`).
    pub(crate) const SP: usize = 7;
    /// DWARF number of the frame pointer (`rbp`).
    pub(crate) const FP: usize = 6;
    /// Return addresses are plain code addresses.
    pub(crate) const fn strip_pointer_auth(addr: u64) -> u64 {
        addr
    }

    /// Copies the interrupted registers out of a signal context, in DWARF order.
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` the kernel passed to an `SA_SIGINFO` handler.
    pub(crate) unsafe fn read_context(uc: *const libc::ucontext_t, out: &mut [u64; NREGS]) {
        // DWARF order: rax rdx rcx rbx rsi rdi rbp rsp r8..r15 rip.
        const ORDER: [libc::c_int; NREGS] = [
            libc::REG_RAX,
            libc::REG_RDX,
            libc::REG_RCX,
            libc::REG_RBX,
            libc::REG_RSI,
            libc::REG_RDI,
            libc::REG_RBP,
            libc::REG_RSP,
            libc::REG_R8,
            libc::REG_R9,
            libc::REG_R10,
            libc::REG_R11,
            libc::REG_R12,
            libc::REG_R13,
            libc::REG_R14,
            libc::REG_R15,
            libc::REG_RIP,
        ];
        // SAFETY: the caller guarantees `uc` is a valid, kernel-written context; we only
        // read plain integers from it.
        let gregs = unsafe { &(*uc).uc_mcontext.gregs };
        for (slot, reg) in out.iter_mut().zip(ORDER) {
            *slot = gregs[reg as usize] as u64;
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod imp {
    /// Registers saved per sample: x0..=x30 and sp by DWARF number (0..=31), plus the
    /// program counter at [`PC`].
    pub(crate) const NREGS: usize = 33;
    /// Index of the program counter in the saved registers (not a DWARF number).
    pub(crate) const PC: usize = 32;
    /// DWARF number of the stack pointer.
    pub(crate) const SP: usize = 31;
    /// DWARF number of the frame pointer (`x29`).
    pub(crate) const FP: usize = 29;
    /// Drops pointer-authentication bits (user space addresses fit in 48 bits).
    pub(crate) const fn strip_pointer_auth(addr: u64) -> u64 {
        addr & 0x0000_ffff_ffff_ffff
    }

    /// Copies the interrupted registers out of a signal context, in DWARF order.
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` the kernel passed to an `SA_SIGINFO` handler.
    pub(crate) unsafe fn read_context(uc: *const libc::ucontext_t, out: &mut [u64; NREGS]) {
        // SAFETY: the caller guarantees `uc` is a valid, kernel-written context; we only
        // read plain integers from it.
        let mc = unsafe { &(*uc).uc_mcontext };
        out[..31].copy_from_slice(&mc.regs);
        out[SP] = mc.sp;
        out[PC] = mc.pc;
    }
}

pub(crate) use imp::*;
