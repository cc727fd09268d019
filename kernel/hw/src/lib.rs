//! AXIOM's hardware layer: the only kernel code that touches the machine.
//!
//! Every `unsafe` block of the kernel lives in this crate (and in
//! `ap-trampoline`, the AP start-up code it places), each with its safety
//! argument; the kernel above it (`kernel/src`) denies `unsafe_code`. What it
//! offers is a small safe API:
//!
//! - [`boot`]: the entry from the boot loader ([`entry!`]), Multiboot1/2
//!   information and the RSDP ([`boot::info`]), starting the other CPUs
//!   ([`boot::ap::ApStart`]); the runtime symbols a freestanding binary needs.
//! - [`cpu`]: instructions (time stamp, sleeping, halting), the descriptor
//!   tables and interrupt entry, the trap hook ([`cpu::trap`]), the CPU
//!   registry with its GS-based per-CPU blocks ([`cpu::percpu`]), the CPU facts
//!   the kernel hands over ([`cpu::facts`]).
//! - [`mem`]: free frames, the identity map, the heap, DMA memory, device
//!   register mappings, the reserved tensor region with checked carving
//!   ([`mem::Region`]) and the weight slot ring that hands DMA-filled slots
//!   to the compute cores ([`mem::slot_ring`]).
//! - [`apic`]: one Local APIC interface over x2APIC and xAPIC (IPIs, EOI).
//! - [`acpi`]: one ACPI handler; the MADT, HPET and MCFG read once at boot.
//! - [`display`]: the boot loader's linear framebuffer as a pixel-row sink.
//! - [`legacy`]: fixed legacy devices, each owning its ports (COM1, PIT,
//!   8259 PICs, QEMU's debug exit, the PCI configuration ports).
//! - [`time`]: the calibrated TSC clock.
//! - [`power`]: stopping every CPU and ending the run.
//!
//! The pure parts (boot information, frames, ICR encoding, MADT, slot ring
//! states) are unit-tested on the host. The pieces that only the kernel
//! binary may link (the boot and interrupt assembly, `#[global_allocator]`,
//! `memcpy` & co and the other `#[no_mangle]` symbols) are behind the
//! `runtime` feature, which only the kernel binary enables.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
// Host builds compile the machine code too (type checks, clippy), but only
// the kernel binary's entry points (feature `runtime`) reach parts of it.
#![cfg_attr(not(feature = "runtime"), allow(dead_code))]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod acpi;
pub mod apic;
pub mod boot;
pub mod cpu;
pub mod display;
pub mod legacy;
pub mod mem;
pub mod power;
pub mod time;

/// Most CPUs the kernel manages (per-CPU tables are sized by it).
pub const MAX_CPUS: usize = 256;

/// Declares the kernel's entry point: `entry!(path::to::main,
/// path::to::cpu_facts)` defines the symbol `boot/entry.s` calls on the boot
/// CPU. Before `main` runs, the hardware layer has recorded the CPU facts
/// `cpu_facts()` returns (the kernel reads CPUID; see [`cpu::facts`]),
/// masked the legacy PICs, set up COM1, loaded the IDT and the boot CPU's
/// GDT, TSS (IST stacks) and per-CPU block (so faults are reported from here
/// on) and parsed the boot information. `main` receives that information (or
/// why it could not be read) and never returns.
///
/// This is the one `#[no_mangle]` item of the kernel crate; it expands only
/// in the kernel binary, which enables the `runtime` feature.
#[macro_export]
macro_rules! entry {
    ($main:path, $cpu_facts:path) => {
        /// Called by `boot/entry.s` on the boot CPU in long mode.
        #[unsafe(no_mangle)]
        pub extern "C" fn kmain(magic: u32, info: u32) -> ! {
            $crate::boot::start(magic, info, $cpu_facts, $main)
        }
    };
}
