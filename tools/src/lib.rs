//! Library half of the `axiom` host tool, shared by the `axiom` binary and
//! the integration tests under `tools/tests/`.
//!
//! - [`qemu`]: build the kernel (and GRUB ISO), boot it in QEMU, stream and
//!   parse its serial telemetry.

pub mod qemu;
