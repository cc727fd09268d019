//! The interrupt descriptor table, shared by all CPUs (the `x86_64` crate's
//! table): every vector points at its 16-byte stub in `isr.s` and runs on an
//! IST stack. Built once, on first load; loaded by every CPU.

use spin::Once;
use x86_64::structures::idt::{EntryOptions, InterruptDescriptorTable};
use x86_64::VirtAddr;

use super::gdt::{IST_DOUBLE_FAULT, IST_EXCEPTION, IST_INTERRUPT, IST_MACHINE_CHECK, IST_NMI};
use crate::boot::symbols;

#[cfg(feature = "runtime")]
core::arch::global_asm!(include_str!("isr.s"), options(att_syntax));

/// The wake-up IPI vector (handled in `isr.s`, never in Rust).
pub const WAKE_VECTOR: u8 = 0xF0;
/// LAPIC error interrupt.
pub const APIC_ERROR_VECTOR: u8 = 0xFE;
/// LAPIC spurious interrupt.
pub const SPURIOUS_VECTOR: u8 = 0xFF;
/// LVT timer vector: programmed but never fires (the timer stays masked).
pub const TIMER_VECTOR_UNUSED: u8 = 0xEF;
/// Bytes per stub in `isr.s`.
const STUB_BYTES: u64 = 16;

static IDT: Once<InterruptDescriptorTable> = Once::new();

fn ist_for(vector: u8) -> u8 {
    match vector {
        2 => IST_NMI,
        8 => IST_DOUBLE_FAULT,
        18 => IST_MACHINE_CHECK,
        0..=31 => IST_EXCEPTION,
        _ => IST_INTERRUPT,
    }
}

/// The entry of `vector`, or `None` for the reserved exception vectors
/// (15, 22-27, 31), which the CPU never raises and stay not-present.
fn entry(idt: &mut InterruptDescriptorTable, vector: u8, handler: VirtAddr) -> Option<&mut EntryOptions> {
    // SAFETY: for every arm, `handler` is the stub for `vector` in
    // `isr.s`. Each stub fits its entry type: it pushes a dummy error code
    // exactly where the CPU pushes none, and either never returns (faults
    // end in `axiom_trap`, which stops the machine) or ends in `iretq`.
    let opts = unsafe {
        match vector {
            8 => idt.double_fault.set_handler_addr(handler),
            10 => idt.invalid_tss.set_handler_addr(handler),
            11 => idt.segment_not_present.set_handler_addr(handler),
            12 => idt.stack_segment_fault.set_handler_addr(handler),
            13 => idt.general_protection_fault.set_handler_addr(handler),
            14 => idt.page_fault.set_handler_addr(handler),
            17 => idt.alignment_check.set_handler_addr(handler),
            18 => idt.machine_check.set_handler_addr(handler),
            21 => idt.cp_protection_exception.set_handler_addr(handler),
            29 => idt.vmm_communication_exception.set_handler_addr(handler),
            30 => idt.security_exception.set_handler_addr(handler),
            15 | 22..=27 | 31 => return None,
            v => idt[v].set_handler_addr(handler),
        }
    };
    Some(opts)
}

fn build() -> InterruptDescriptorTable {
    let stubs = symbols::isr_stubs();
    let mut idt = InterruptDescriptorTable::new();
    for vector in 0..=255u8 {
        let handler = VirtAddr::new(stubs + STUB_BYTES * vector as u64);
        if let Some(opts) = entry(&mut idt, vector, handler) {
            // SAFETY: each IST slot is a separate stack of this CPU's TSS
            // (`gdt.rs`); vectors sharing a slot never nest: interrupts stay
            // masked in every handler (interrupt gates), faults do not return,
            // and NMI and double fault have slots of their own.
            unsafe { opts.set_stack_index(ist_for(vector) as u16 - 1) };
        }
    }
    idt
}

/// Load the IDT on this CPU (the first call builds it).
pub fn load() {
    IDT.call_once(build).load();
}
