//! CPU features the kernel reports or depends on (CPUID + XCR0).

use super::{cpuid, xcr0};

/// What `@boot` reports and the kernel checks (`park=mwait` needs `monitor`).
#[derive(Clone, Copy, Debug)]
pub struct Features {
    pub avx: bool,
    pub avx2: bool,
    pub fma: bool,
    pub avx512f: bool,
    pub monitor: bool,
    pub invariant_tsc: bool,
    pub xcr0: u64,
}

pub fn detect() -> Features {
    let l1 = cpuid(1, 0);
    let max = cpuid(0, 0).eax;
    let l7 = if max >= 7 { cpuid(7, 0) } else { cpuid(0, 0) };
    let ext_max = cpuid(0x8000_0000, 0).eax;
    let xcr0 = xcr0();
    let ymm = xcr0 & 0x6 == 0x6;
    let zmm = xcr0 & 0xE6 == 0xE6;
    Features {
        avx: l1.ecx & (1 << 28) != 0 && ymm,
        avx2: max >= 7 && l7.ebx & (1 << 5) != 0 && ymm,
        fma: l1.ecx & (1 << 12) != 0 && ymm,
        avx512f: max >= 7 && l7.ebx & (1 << 16) != 0 && zmm,
        monitor: l1.ecx & (1 << 3) != 0,
        invariant_tsc: ext_max >= 0x8000_0007 && cpuid(0x8000_0007, 0).edx & (1 << 8) != 0,
        xcr0,
    }
}
