//! Privileged and timing instructions, each wrapped once with its safety
//! argument; the rest of the kernel calls these safe functions.

use core::arch::asm;
use core::arch::x86_64::{CpuidResult, __cpuid_count, _rdtsc};

pub fn cpuid(leaf: u32, sub: u32) -> CpuidResult {
    // SAFETY: CPUID exists on every x86-64 CPU and has no side effects.
    #[allow(unused_unsafe)]
    unsafe {
        __cpuid_count(leaf, sub)
    }
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC is unprivileged and side-effect free.
    unsafe { _rdtsc() }
}

/// # Safety
/// Writing an MSR can change the machine's behaviour arbitrarily; the caller
/// names the register and value deliberately.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: per the function contract.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack, preserves_flags))
    }
}

pub const IA32_GS_BASE: u32 = 0xC000_0101;

pub fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

pub fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// XCR0: the register state the OS enabled (x87, SSE, AVX, AVX-512).
pub fn xcr0() -> u64 {
    if read_cr4() & (1 << 18) == 0 {
        return 0x3; // no XSAVE: x87 + SSE only
    }
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV with ECX = 0 is valid once CR4.OSXSAVE is set (checked).
    unsafe { asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) }
    (hi as u64) << 32 | lo as u64
}

/// Sleep until an interrupt arrives: `sti; hlt` (the STI shadow makes the
/// pair atomic, so an interrupt pending at STI still wakes the HLT), then
/// mask interrupts again.
pub fn sleep_until_interrupt() {
    // SAFETY: the only interrupts a running kernel CPU takes are the wake-up
    // IPI (handled in assembly, no Rust state touched) and fatal ones.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) }
}

/// Arm MONITOR on `addr`, then `sti; mwait` unless `still_waiting()` turned
/// false; interrupts are masked again on return.
pub fn mwait_on(addr: *const u8, still_waiting: &dyn Fn() -> bool) {
    // SAFETY: MONITOR only records an address range to watch (any readable
    // address); availability is checked by the caller via CPUID.
    unsafe { asm!("monitor", in("rax") addr, in("ecx") 0, in("edx") 0, options(nostack, preserves_flags)) }
    if still_waiting() {
        // SAFETY: MWAIT with hints 0 enters C1; an interrupt or a write to the
        // monitored line wakes it.
        unsafe { asm!("sti", "mwait", "cli", in("eax") 0, in("ecx") 0, options(nomem, nostack)) }
    }
}

/// Stop this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: with interrupts masked, HLT only ends on NMI/SMI; we loop back.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) }
    }
}

/// Read the per-CPU word at `gs:offset`.
///
/// # Safety
/// GS base must point at this CPU's per-CPU block, which is at least
/// `offset + 8` bytes long.
pub unsafe fn gs_read_u64(offset: usize) -> u64 {
    let v: u64;
    // SAFETY: per the function contract.
    unsafe { asm!("mov {}, gs:[{}]", out(reg) v, in(reg) offset, options(readonly, nostack, preserves_flags)) }
    v
}

/// True when running under a hypervisor (CPUID.1:ECX bit 31).
pub fn under_hypervisor() -> bool {
    cpuid(1, 0).ecx & (1 << 31) != 0
}
