//! The interrupt descriptor table, shared by all CPUs: 256 interrupt gates
//! pointing at the stubs in `isr.s`, each on an IST stack.

use core::arch::asm;
use core::cell::UnsafeCell;

use super::gdt::{IST_DOUBLE_FAULT, IST_EXCEPTION, IST_INTERRUPT, IST_MACHINE_CHECK, IST_NMI, KERNEL_CODE};

core::arch::global_asm!(include_str!("isr.s"), options(att_syntax));

/// The wake-up IPI vector (handled in `isr.s`, never in Rust).
pub const WAKE_VECTOR: u8 = 0xF0;
/// LAPIC error interrupt.
pub const APIC_ERROR_VECTOR: u8 = 0xFE;
/// LAPIC spurious interrupt.
pub const SPURIOUS_VECTOR: u8 = 0xFF;
/// LVT timer vector: programmed but never fires (the timer stays masked).
pub const TIMER_VECTOR_UNUSED: u8 = 0xEF;

extern "C" {
    static axiom_isr_stubs: u8;
}

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

#[repr(C, align(16))]
struct Idt(UnsafeCell<[Gate; 256]>);

// SAFETY: written once by the BSP in `init` before any other CPU runs or any
// IDT is loaded; read-only (by the hardware) afterwards.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new(
    [Gate { offset_low: 0, selector: 0, ist: 0, type_attr: 0, offset_mid: 0, offset_high: 0, reserved: 0 }; 256],
));

fn ist_for(vector: usize) -> u8 {
    match vector {
        2 => IST_NMI,
        8 => IST_DOUBLE_FAULT,
        18 => IST_MACHINE_CHECK,
        0..=31 => IST_EXCEPTION,
        _ => IST_INTERRUPT,
    }
}

/// Fill the IDT (BSP, once, before `load`).
pub fn init() {
    let stubs = core::ptr::addr_of!(axiom_isr_stubs) as u64;
    // SAFETY: see `Idt`'s Sync impl: single writer before any reader.
    let gates = unsafe { &mut *IDT.0.get() };
    for (v, gate) in gates.iter_mut().enumerate() {
        let handler = stubs + 16 * v as u64;
        *gate = Gate {
            offset_low: handler as u16,
            selector: KERNEL_CODE,
            ist: ist_for(v),
            type_attr: 0x8E, // present, DPL 0, 64-bit interrupt gate (IF cleared on entry)
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        };
    }
}

/// Load the IDT on this CPU.
pub fn load() {
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let ptr = Pointer { limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16, base: IDT.0.get() as u64 };
    // SAFETY: the IDT is 'static and fully initialised by `init`.
    unsafe { asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags)) }
}
