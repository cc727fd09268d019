//! The CPU: instruction wrappers (each with its safety argument once, here),
//! the descriptor tables and interrupt entry (`gdt`, `idt`, `isr.s`), traps
//! ([`trap`]), the CPU registry and per-CPU blocks ([`percpu`]), deliberate
//! faults for self-tests ([`fault`]) and the CPU facts the kernel hands over
//! ([`facts`]).

pub mod facts;
pub mod fault;
pub(crate) mod gdt;
pub(crate) mod idt;
pub mod percpu;
pub mod trap;

use core::arch::asm;
use core::arch::x86_64::_rdtsc;
use core::marker::PhantomData;

use x86_64::instructions::interrupts;
use x86_64::registers::control::Cr2;

pub use percpu::Cpu;

/// The time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC is unprivileged and side-effect free.
    unsafe { _rdtsc() }
}

/// CR2: the faulting address of the last page fault.
pub(crate) fn read_cr2() -> u64 {
    Cr2::read_raw()
}

/// Sleep until an interrupt arrives: `sti; hlt` (the STI shadow makes the
/// pair atomic, so an interrupt pending at STI still wakes the HLT), then
/// mask interrupts again. The only interrupts a running kernel CPU takes are
/// the wake-up IPI (handled in assembly, no Rust state touched) and fatal ones.
#[inline]
pub fn sleep_until_interrupt() {
    interrupts::enable_and_hlt();
    interrupts::disable();
}

/// An address a sleeping CPU can watch for writes (`monitor`/`mwait`):
/// made from a reference, so it is always mapped.
#[derive(Clone, Copy, Debug)]
pub struct Watch<'a> {
    addr: *const u8,
    _of: PhantomData<&'a u8>,
}

impl<'a> Watch<'a> {
    pub fn of<T>(x: &'a T) -> Self {
        Watch { addr: x as *const T as *const u8, _of: PhantomData }
    }
}

/// Arm MONITOR on `watch`, then `sti; mwait` unless `still_waiting()` turned
/// false; interrupts are masked again on return. Without MONITOR/MWAIT this
/// sleeps with `hlt` instead (woken by the same IPI).
pub fn mwait_on(watch: Watch<'_>, still_waiting: &dyn Fn() -> bool) {
    if !facts::get().monitor {
        if still_waiting() {
            sleep_until_interrupt();
        }
        return;
    }
    // SAFETY: MONITOR only records an address range to watch; `watch` comes
    // from a live reference, so the address is mapped. The CPU has MONITOR
    // by the CPUID facts checked above (were they wrong, the instruction
    // would raise #UD, which the trap report handles; no memory is touched).
    unsafe { asm!("monitor", in("rax") watch.addr, in("ecx") 0, in("edx") 0, options(nostack, preserves_flags)) }
    if still_waiting() {
        // SAFETY: MWAIT with hints 0 enters C1; an interrupt or a write to the
        // monitored line wakes it. STI right before it, CLI after: the same
        // interrupt discipline as `sleep_until_interrupt`.
        unsafe { asm!("sti", "mwait", "cli", in("eax") 0, in("ecx") 0, options(nomem, nostack)) }
    }
}

/// Stop this CPU for good (interrupts masked; an NMI returns to the loop).
pub fn halt_forever() -> ! {
    interrupts::disable();
    loop {
        x86_64::instructions::hlt();
    }
}

/// Read the per-CPU word at `gs:offset`.
///
/// # Safety
/// GS base must point at this CPU's per-CPU block, which is at least
/// `offset + 8` bytes long.
#[inline]
pub(crate) unsafe fn gs_read_u64(offset: usize) -> u64 {
    let v: u64;
    // SAFETY: per the function contract.
    unsafe { asm!("mov {}, gs:[{}]", out(reg) v, in(reg) offset, options(readonly, nostack, preserves_flags)) }
    v
}
