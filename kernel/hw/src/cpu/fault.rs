//! Exceptions raised on purpose, so a self-test can prove that a fault on
//! any CPU ends in a report and a failing exit rather than a hang.

/// An exception to raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// #PF: a read of a canonical but unmapped address.
    PageFault,
    /// #GP: a read of a non-canonical address.
    GeneralProtection,
    /// #UD: `ud2`.
    InvalidOpcode,
    /// #DE: a division by zero.
    DivideError,
}

/// Raise `fault` on this CPU. The trap path stops the machine, so this
/// returns only if the CPU did not fault (which the caller reports).
pub fn raise(fault: Fault) {
    match fault {
        Fault::PageFault => {
            // Canonical but unmapped (the identity map covers RAM only).
            let addr = 0x0000_7F00_DEAD_0000u64 as *const u64;
            // SAFETY: the read faults before it can observe memory; the page
            // fault handler never returns.
            let v = unsafe { core::ptr::read_volatile(addr) };
            core::hint::black_box(v);
        }
        Fault::GeneralProtection => {
            let addr = 0xDEAD_0000_0000_0000u64 as *const u64; // non-canonical
            // SAFETY: a non-canonical address raises #GP before any access;
            // the handler never returns.
            let v = unsafe { core::ptr::read_volatile(addr) };
            core::hint::black_box(v);
        }
        // SAFETY: ud2 raises #UD; the handler never returns.
        Fault::InvalidOpcode => unsafe { core::arch::asm!("ud2") },
        Fault::DivideError => {
            // SAFETY: divides by zero on purpose (#DE); the handler never
            // returns; only the named registers are touched.
            unsafe { core::arch::asm!("xor edx, edx", "xor eax, eax", "xor ecx, ecx", "div ecx", out("eax") _, out("edx") _, out("ecx") _) }
        }
    }
}
