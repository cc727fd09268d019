//! Library half of the `axiom` host tool, shared by the `axiom` binary and
//! the integration tests under `tools/tests/`.
//!
//! - [`qemu`]: build the kernel (and GRUB ISO), boot it in QEMU, stream and
//!   parse its serial telemetry.
//! - [`infer`]: inference-mode command lines, the packed-image cache, the
//!   default model, answers out of the telemetry.

pub mod infer;
pub mod qemu;
