//! x86 port I/O, for the legacy PCI configuration mechanism (0xCF8/0xCFC).

use super::PortIo;

/// The CPU's I/O port space. Only the kernel constructs one (ring 0).
#[derive(Clone, Copy, Debug)]
pub struct X86PortIo {
    _private: (),
}

impl X86PortIo {
    /// # Safety
    /// The caller runs at CPL 0 (or has IOPL) and is the only code using the
    /// ports it will pass to this value (here: the PCI configuration ports).
    pub unsafe fn new() -> Self {
        Self { _private: () }
    }
}

impl PortIo for X86PortIo {
    #[cfg(target_arch = "x86_64")]
    fn in32(&self, port: u16) -> u32 {
        let value: u32;
        // SAFETY: `new`'s contract: we are privileged and own these ports; an
        // `in` has no memory effects.
        unsafe { core::arch::asm!("in eax, dx", out("eax") value, in("dx") port, options(nomem, nostack, preserves_flags)) };
        value
    }

    #[cfg(target_arch = "x86_64")]
    fn out32(&self, port: u16, value: u32) {
        // SAFETY: as for `in32`; PCI configuration writes do not touch memory.
        unsafe { core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags)) };
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn in32(&self, _port: u16) -> u32 {
        !0
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn out32(&self, _port: u16, _value: u32) {}
}
