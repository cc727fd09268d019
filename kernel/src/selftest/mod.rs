//! Diagnostic modes chosen with `selftest=NAME`. Add one with one line in
//! [`SELFTESTS`]; `Err(msg)` ends the run with `@error` and a failing exit.

mod fault;
mod mem;
mod smp;

use alloc::string::String;
use core::fmt;

use crate::boot::Context;

pub type SelfTestFn = fn(&Context) -> Result<(), String>;

pub struct SelfTest {
    pub name: &'static str,
    pub about: &'static str,
    pub run: SelfTestFn,
}

pub static SELFTESTS: &[SelfTest] = &[
    SelfTest { name: "smp", about: "lockstep barrier rounds on every CPU with a shared counter check", run: smp::run },
    SelfTest { name: "fault", about: "raise a CPU exception on purpose (must end in @error)", run: fault::run_fault },
    SelfTest { name: "panic", about: "panic on purpose (must end in @error)", run: fault::run_panic },
    SelfTest { name: "mem", about: "DMA buffers, MMIO mappings and the reserved region", run: mem::run },
    SelfTest { name: "nvme", about: "identify the NVMe device, read the whole namespace deep-queued, CRC32C it", run: crate::storage::selftest::run_cmdline },
];

pub fn find(name: &str) -> Option<&'static SelfTest> {
    SELFTESTS.iter().find(|t| t.name == name)
}

/// "smp, fault, panic, ..." for error messages (no heap needed: the
/// command line is checked before memory is set up).
pub struct Names;

pub const NAMES: Names = Names;

impl fmt::Display for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in SELFTESTS.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(t.name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use axiom_proto::cmdline::{keys, Type};

    #[test]
    fn the_selftest_key_offers_exactly_these_selftests() {
        let Type::Choice { choices, .. } = keys::SELFTEST.spec.ty else { panic!("selftest= is a choice") };
        let names: std::vec::Vec<&str> = super::SELFTESTS.iter().map(|t| t.name).collect();
        assert_eq!(choices, names.as_slice());
    }
}
