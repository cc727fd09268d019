//! The AXIOM kernel above the hardware layer: boot sequencing, SMP (roles,
//! launches, barriers, AP start-up), storage glue, self-tests, the inference
//! mode and telemetry. The machine is reached only through `axiom-hw`, so
//! this crate denies `unsafe_code`; the one exception is `infer/team.rs`,
//! which implements the engine's `unsafe trait Worker` (see its SAFETY
//! comment). The binary (`main.rs`) only declares the entry point and the
//! panic handler. The command-line keys and the telemetry events are
//! declared in `axiom-proto`, shared with the host tools.
//!
//! Pure parts, unit-tested on the host (`cargo test -p axiom-kernel`):
//! - [`smp::barrier`]: the sense-reversing lockstep barrier (spin, then park).
//! - [`stats`]: min / median / p99 / max of samples.
//! - [`tensor_plan`]: the tensor region's memory plan (resident, or pinned
//!   layers plus streaming slots).
//! - [`line_reader`]: bounded lines from untrusted serial input.
//! - [`input`]: PS/2 scancodes (set 1 and 2, US layout) and the keyboard's
//!   line editor; [`screen`] draws with the host-tested `axiom-screen`.

#![no_std]
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod boot;
pub mod console;
pub mod faults;
pub mod infer;
pub mod input;
pub mod line_reader;
pub mod screen;
pub mod selftest;
pub mod smp;
pub mod stats;
pub mod storage;
pub mod telemetry;
pub mod tensor_plan;

pub use axiom_hw::MAX_CPUS;
