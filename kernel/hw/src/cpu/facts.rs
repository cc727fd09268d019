//! What the hardware layer needs to know about the CPU: whether it has
//! x2APIC and MONITOR/MWAIT, whether it runs under a hypervisor (QEMU's exit
//! port), and the TSC frequency CPUID names. The layer executes no CPUID of
//! its own: the kernel reads the CPU once with the engine's CPUID module
//! (`axiom_engine::cpu`, the one place that decodes CPUID, for the engine and
//! the kernel) and hands these facts over at the entry ([`crate::entry!`]),
//! before anything here needs them. The hardware layer does not depend on
//! the inference engine; the kernel, which uses both, connects them.

use spin::Once;

/// The CPU facts the hardware layer acts on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFacts {
    /// x2APIC mode is available (`CPUID.1:ECX[21]`): the LAPICs run in it.
    pub x2apic: bool,
    /// MONITOR/MWAIT (`CPUID.1:ECX[3]`); without it `mwait_on` sleeps with `hlt`.
    pub monitor: bool,
    /// A hypervisor (`CPUID.1:ECX[31]`): QEMU's debug-exit port ends the run.
    pub hypervisor: bool,
    /// The TSC frequency from CPUID leaf 0x15, when the CPU names its crystal.
    pub tsc_khz: Option<u64>,
    /// The processor base frequency from CPUID leaf 0x16, in MHz.
    pub base_mhz: Option<u32>,
}

static FACTS: Once<CpuFacts> = Once::new();

/// Records the facts; the first call wins (the entry makes it, on the BSP).
pub fn set(facts: CpuFacts) {
    FACTS.call_once(|| facts);
}

/// The facts the kernel handed over (all false before that, e.g. in host tests).
pub fn get() -> CpuFacts {
    FACTS.get().copied().unwrap_or_default()
}
