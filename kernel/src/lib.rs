//! The pure half of the AXIOM kernel: logic with no hardware access, built
//! for the kernel binary and unit-tested on the host (`cargo test -p axiom-kernel`).
//!
//! - [`bootinfo`]: Multiboot1/2 information, memory map, RSDP.
//! - [`madt`]: the CPU list from ACPI's MADT (through the `acpi` crate).
//! - [`icr`]: Local APIC interrupt-command encoding for xAPIC and x2APIC.
//! - [`barrier`]: the sense-reversing lockstep barrier (spin, then park).
//! - [`physmem`]: free physical ranges and contiguous carving.
//! - [`cmdline`]: `key=value` command line against one key table.
//! - [`json`]: the telemetry JSON writer.
//! - [`slot_ring`]: the weight slot ring between the I/O core and compute cores.
//! - [`stats`]: min / median / p99 / max of samples.
//! - [`tensor_plan`]: the tensor region's carving and the resident/streaming choice.
//! - [`line_reader`]: bounded lines from untrusted serial input.
//!
//! The binary (`src/main.rs` and its modules) holds everything that touches
//! the machine.

#![no_std]

#[cfg(test)]
extern crate std;

pub mod barrier;
pub mod bootinfo;
pub mod cmdline;
pub mod icr;
pub mod json;
pub mod line_reader;
pub mod madt;
pub mod physmem;
pub mod slot_ring;
pub mod stats;
pub mod tensor_plan;

/// Most CPUs the kernel manages (per-CPU tables are sized by it).
pub const MAX_CPUS: usize = 256;
