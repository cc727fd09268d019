//! Addresses defined by the kernel binary's assembly and linker script. They
//! exist only in the kernel binary (feature `runtime`); host builds, which
//! compile the rest of the hardware layer for its tests, never reach these.

use crate::mem::frames::PhysRange;

#[cfg(feature = "runtime")]
mod kernel {
    extern "C" {
        /// `cpu/isr.s`: 256 stubs of 16 bytes.
        static axiom_isr_stubs: u8;
        /// `boot/entry.s`: the 64-bit AP entry the trampoline jumps to.
        static axiom_ap_start64: u8;
        /// `linker.ld`: the image's first and past-the-end bytes.
        static __kernel_start: u8;
        static __kernel_end: u8;
    }

    pub fn isr_stubs() -> u64 {
        core::ptr::addr_of!(axiom_isr_stubs) as u64
    }

    pub fn ap_start64() -> u64 {
        core::ptr::addr_of!(axiom_ap_start64) as u64
    }

    pub fn image() -> (u64, u64) {
        (core::ptr::addr_of!(__kernel_start) as u64, core::ptr::addr_of!(__kernel_end) as u64)
    }
}

#[cfg(not(feature = "runtime"))]
mod kernel {
    const WHY: &str = "only the kernel binary (feature `runtime`) has this symbol";

    pub fn isr_stubs() -> u64 {
        panic!("{WHY}")
    }

    pub fn ap_start64() -> u64 {
        panic!("{WHY}")
    }

    pub fn image() -> (u64, u64) {
        panic!("{WHY}")
    }
}

/// Start of the interrupt stubs.
pub fn isr_stubs() -> u64 {
    kernel::isr_stubs()
}

/// The 64-bit entry of an AP (patched into the trampoline).
pub fn ap_start64() -> u64 {
    kernel::ap_start64()
}

/// The kernel image's physical extent.
pub fn kernel_image() -> PhysRange {
    let (start, end) = kernel::image();
    PhysRange::new(start, end)
}
