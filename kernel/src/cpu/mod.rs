//! CPU setup: instructions, port I/O, descriptor tables (GDT, per-CPU TSS with
//! IST stacks, IDT), exception reports and feature detection.

pub mod exceptions;
pub mod features;
pub mod gdt;
pub mod idt;
pub mod instr;
pub mod port;
