//! The one reader of CPUID and XGETBV, for the engine and the kernel.
//!
//! `is_x86_feature_detected!` lives in `std`, and the engine also runs on bare
//! kernel compute cores, so we ask the CPU ourselves. A vector extension counts
//! as present only when the CPU implements it (CPUID) *and* the operating
//! system (or our kernel) has enabled its register state in XCR0 (XGETBV):
//! executing AVX code with XCR0.AVX clear faults with #UD. The kernel reads
//! its platform facts here too (MONITOR/MWAIT, x2APIC, the hypervisor bit,
//! the invariant TSC and the TSC frequency leaves), so CPUID is decoded in
//! one place. Decoding is a pure function of the registers, tested with
//! hand-made values ([`CpuFeatures::detect`] = read + decode).

/// What CPUID and XGETBV report, decoded. Bit positions: Intel SDM vol. 2A,
/// CPUID; AMD APM vol. 3, appendix E.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// AVX with its 256-bit register state enabled (`CPUID.1:ECX[28]`, XCR0 bits 1-2).
    pub avx: bool,
    /// AVX2 with YMM state (`CPUID.7.0:EBX[5]`).
    pub avx2: bool,
    /// FMA3, `vfmadd*ps`, with YMM state (`CPUID.1:ECX[12]`).
    pub fma: bool,
    /// F16C, `vcvtph2ps` / `vcvtps2ph`, with YMM state (`CPUID.1:ECX[29]`).
    pub f16c: bool,
    /// AVX-512 Foundation, with opmask and ZMM state enabled (`CPUID.7.0:EBX[16]`, XCR0 bits 5-7).
    pub avx512f: bool,
    /// AVX-512 byte/word instructions, `vpmaddubsw` on ZMM (`CPUID.7.0:EBX[30]`).
    pub avx512bw: bool,
    /// AVX-512 vector-length extensions, EVEX on XMM/YMM (`CPUID.7.0:EBX[31]`).
    pub avx512vl: bool,
    /// AVX-512 VNNI, `vpdpbusd` (`CPUID.7.0:ECX[11]`).
    pub avx512vnni: bool,
    /// SSE4.2, the `crc32` instruction (`CPUID.1:ECX[20]`).
    pub sse42: bool,
    /// MONITOR/MWAIT (`CPUID.1:ECX[3]`).
    pub monitor: bool,
    /// x2APIC mode (`CPUID.1:ECX[21]`).
    pub x2apic: bool,
    /// Running under a hypervisor (`CPUID.1:ECX[31]`).
    pub hypervisor: bool,
    /// The TSC ticks at a constant rate in every P-, C- and T-state
    /// (`CPUID.80000007H:EDX[8]`).
    pub invariant_tsc: bool,
    /// XCR0, the register state the OS enabled (bit 0 x87, 1 SSE, 2 AVX,
    /// 5-7 AVX-512); 0 when the OS has not enabled XSAVE (CR4.OSXSAVE, seen
    /// as `CPUID.1:ECX[27]`): then only x87 and SSE state is usable.
    pub xcr0: u64,
    /// CPUID leaf 0x15, when the CPU has it.
    pub tsc_leaf: Option<TscLeaf>,
    /// CPUID leaf 0x16 `EAX[15:0]`, the processor base frequency in MHz, when
    /// the CPU has the leaf and reports a value.
    pub base_mhz: Option<u32>,
}

/// CPUID leaf 0x15: the TSC's frequency as a ratio of the core crystal clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TscLeaf {
    /// EAX: denominator of the TSC / crystal ratio (0: not enumerated).
    pub denominator: u32,
    /// EBX: numerator (0: not enumerated).
    pub numerator: u32,
    /// ECX: crystal frequency in Hz (0: not enumerated).
    pub crystal_hz: u32,
}

impl TscLeaf {
    /// The TSC frequency in kHz (`crystal_hz · numerator / denominator /
    /// 1000`), when all three are enumerated.
    pub fn tsc_khz(&self) -> Option<u64> {
        if self.denominator == 0 || self.numerator == 0 || self.crystal_hz == 0 {
            return None;
        }
        Some(self.crystal_hz as u64 * self.numerator as u64 / self.denominator as u64 / 1000)
    }
}

impl CpuFeatures {
    /// Queries the running CPU. Cheap enough to call at start-up (a few
    /// CPUID leaves, each a VM exit under a hypervisor); the engine calls it
    /// when [`crate::matmul::Kernels`] are chosen.
    pub fn detect() -> CpuFeatures {
        detect_impl()
    }

    /// Whether the AVX2 path can run: AVX2, FMA and F16C, with YMM state on.
    pub fn has_avx2_path(&self) -> bool {
        self.avx2 && self.fma && self.f16c
    }

    /// Whether the AVX-512 path can run: the AVX2 path plus F, BW and VL with
    /// ZMM and opmask state on.
    pub fn has_avx512_path(&self) -> bool {
        self.has_avx2_path() && self.avx512f && self.avx512bw && self.avx512vl
    }

    /// Whether the AVX-512 VNNI path can run.
    pub fn has_avx512_vnni_path(&self) -> bool {
        self.has_avx512_path() && self.avx512vnni
    }
}

/// The CPUID registers the decoding reads (zero for leaves past the CPU's
/// highest one).
#[derive(Clone, Copy, Debug, Default)]
struct Leaves {
    /// Leaf 0 EAX: the highest standard leaf.
    max: u32,
    leaf1_ecx: u32,
    leaf7_ebx: u32,
    leaf7_ecx: u32,
    /// Leaf 0x8000_0007 EDX (advanced power management).
    ext7_edx: u32,
    /// Leaf 0x15: EAX, EBX, ECX.
    leaf15: [u32; 3],
    leaf16_eax: u32,
}

const OSXSAVE: u32 = 1 << 27;

/// XCR0 bits 1-2: SSE and AVX (upper YMM) state.
const XCR0_YMM: u64 = 0b110;
/// XCR0 bits 1-2 and 5-7: the above plus opmask, ZMM_Hi256, Hi16_ZMM.
const XCR0_ZMM: u64 = 0b1110_0110;

fn decode(l: &Leaves, xcr0: u64) -> CpuFeatures {
    let bit = |reg: u32, n: u32| reg & (1 << n) != 0;
    let ymm = xcr0 & XCR0_YMM == XCR0_YMM;
    let zmm = xcr0 & XCR0_ZMM == XCR0_ZMM;
    CpuFeatures {
        avx: ymm && bit(l.leaf1_ecx, 28),
        avx2: ymm && bit(l.leaf7_ebx, 5),
        fma: ymm && bit(l.leaf1_ecx, 12),
        f16c: ymm && bit(l.leaf1_ecx, 29),
        avx512f: zmm && bit(l.leaf7_ebx, 16),
        avx512bw: zmm && bit(l.leaf7_ebx, 30),
        avx512vl: zmm && bit(l.leaf7_ebx, 31),
        avx512vnni: zmm && bit(l.leaf7_ecx, 11),
        sse42: bit(l.leaf1_ecx, 20),
        monitor: bit(l.leaf1_ecx, 3),
        x2apic: bit(l.leaf1_ecx, 21),
        hypervisor: bit(l.leaf1_ecx, 31),
        invariant_tsc: bit(l.ext7_edx, 8),
        xcr0,
        tsc_leaf: (l.max >= 0x15).then_some(TscLeaf { denominator: l.leaf15[0], numerator: l.leaf15[1], crystal_hz: l.leaf15[2] }),
        base_mhz: Some(l.leaf16_eax & 0xFFFF).filter(|&mhz| l.max >= 0x16 && mhz != 0),
    }
}

#[cfg(target_arch = "x86_64")]
fn detect_impl() -> CpuFeatures {
    use core::arch::x86_64::__cpuid_count;

    // CPUID exists on every x86_64 CPU and has no side effects.
    let max = __cpuid_count(0, 0).eax;
    let max_ext = __cpuid_count(0x8000_0000, 0).eax;
    let leaf = |n: u32| if max >= n { __cpuid_count(n, 0) } else { core::arch::x86_64::CpuidResult { eax: 0, ebx: 0, ecx: 0, edx: 0 } };
    let (leaf7, leaf15) = (leaf(7), leaf(0x15));
    let leaves = Leaves {
        max,
        leaf1_ecx: leaf(1).ecx,
        leaf7_ebx: leaf7.ebx,
        leaf7_ecx: leaf7.ecx,
        ext7_edx: if max_ext >= 0x8000_0007 { __cpuid_count(0x8000_0007, 0).edx } else { 0 },
        leaf15: [leaf15.eax, leaf15.ebx, leaf15.ecx],
        leaf16_eax: leaf(0x16).eax,
    };
    let xcr0 = if leaves.leaf1_ecx & OSXSAVE != 0 { read_xcr0() } else { 0 };
    decode(&leaves, xcr0)
}

/// XCR0, the mask of register state the OS saves and so allows us to use.
/// Only called once CPUID reported OSXSAVE.
#[cfg(target_arch = "x86_64")]
fn read_xcr0() -> u64 {
    #[target_feature(enable = "xsave")]
    fn xgetbv0() -> u64 {
        // SAFETY: XGETBV with ECX = 0 is valid once CR4.OSXSAVE is set
        // (CPUID.1:ECX.OSXSAVE, checked by the caller), and reads nothing else.
        unsafe { core::arch::x86_64::_xgetbv(0) }
    }
    // SAFETY: OSXSAVE implies the CPU has XSAVE, the feature `xgetbv0` is
    // compiled for.
    unsafe { xgetbv0() }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_impl() -> CpuFeatures {
    CpuFeatures::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_agrees_with_std() {
        let f = CpuFeatures::detect();
        assert_eq!(f.avx, std::is_x86_feature_detected!("avx"));
        assert_eq!(f.avx2, std::is_x86_feature_detected!("avx2"));
        assert_eq!(f.fma, std::is_x86_feature_detected!("fma"));
        assert_eq!(f.f16c, std::is_x86_feature_detected!("f16c"));
        assert_eq!(f.avx512f, std::is_x86_feature_detected!("avx512f"));
        assert_eq!(f.avx512bw, std::is_x86_feature_detected!("avx512bw"));
        assert_eq!(f.avx512vl, std::is_x86_feature_detected!("avx512vl"));
        assert_eq!(f.avx512vnni, std::is_x86_feature_detected!("avx512vnni"));
        assert_eq!(f.sse42, std::is_x86_feature_detected!("sse4.2"));
        // std has no word for XCR0, but its AVX and AVX-512 detection checks
        // that the OS enabled their register state.
        if std::is_x86_feature_detected!("avx") {
            assert_eq!(f.xcr0 & XCR0_YMM, XCR0_YMM, "xcr0 {:#x}", f.xcr0);
        }
        if std::is_x86_feature_detected!("avx512f") {
            assert_eq!(f.xcr0 & XCR0_ZMM, XCR0_ZMM, "xcr0 {:#x}", f.xcr0);
        }
    }

    /// Leaves with every feature bit this module reads set, and the TSC leaves.
    fn everything() -> Leaves {
        Leaves {
            max: 0x16,
            leaf1_ecx: 1 << 3 | 1 << 12 | 1 << 20 | 1 << 21 | 1 << 27 | 1 << 28 | 1 << 29 | 1 << 31,
            leaf7_ebx: 1 << 5 | 1 << 16 | 1 << 30 | 1 << 31,
            leaf7_ecx: 1 << 11,
            ext7_edx: 1 << 8,
            leaf15: [2, 166, 24_000_000],
            leaf16_eax: 0x1_0BB8,
        }
    }

    #[test]
    fn every_bit_decodes_to_its_feature() {
        let all = decode(&everything(), 0xE7);
        let expected = CpuFeatures {
            avx: true,
            avx2: true,
            fma: true,
            f16c: true,
            avx512f: true,
            avx512bw: true,
            avx512vl: true,
            avx512vnni: true,
            sse42: true,
            monitor: true,
            x2apic: true,
            hypervisor: true,
            invariant_tsc: true,
            xcr0: 0xE7,
            tsc_leaf: Some(TscLeaf { denominator: 2, numerator: 166, crystal_hz: 24_000_000 }),
            base_mhz: Some(0xBB8),
        };
        assert_eq!(all, expected);
        assert!(all.has_avx512_vnni_path());
        assert_eq!(all.tsc_leaf.unwrap().tsc_khz(), Some(1_992_000));
        // Each bit alone sets exactly its own flag.
        let none = decode(&Leaves { max: 0x16, ..Leaves::default() }, 0xE7);
        type SetBit = fn(&mut Leaves);
        type Flag = fn(&CpuFeatures) -> bool;
        let cases: [(SetBit, Flag); 13] = [
            (|l| l.leaf1_ecx = 1 << 28, |f| f.avx),
            (|l| l.leaf7_ebx = 1 << 5, |f| f.avx2),
            (|l| l.leaf1_ecx = 1 << 12, |f| f.fma),
            (|l| l.leaf1_ecx = 1 << 29, |f| f.f16c),
            (|l| l.leaf7_ebx = 1 << 16, |f| f.avx512f),
            (|l| l.leaf7_ebx = 1 << 30, |f| f.avx512bw),
            (|l| l.leaf7_ebx = 1 << 31, |f| f.avx512vl),
            (|l| l.leaf7_ecx = 1 << 11, |f| f.avx512vnni),
            (|l| l.leaf1_ecx = 1 << 20, |f| f.sse42),
            (|l| l.leaf1_ecx = 1 << 3, |f| f.monitor),
            (|l| l.leaf1_ecx = 1 << 21, |f| f.x2apic),
            (|l| l.leaf1_ecx = 1 << 31, |f| f.hypervisor),
            (|l| l.ext7_edx = 1 << 8, |f| f.invariant_tsc),
        ];
        for (i, (set, flag)) in cases.iter().enumerate() {
            let mut l = Leaves { max: 0x16, ..Leaves::default() };
            set(&mut l);
            let f = decode(&l, 0xE7);
            assert!(flag(&f), "case {i}: its flag");
            let others = cases.iter().enumerate().filter(|&(j, _)| j != i).filter(|(_, (_, g))| g(&f)).count();
            assert_eq!(others, 0, "case {i}: no other flag");
            assert!(cases.iter().all(|(_, g)| !g(&none)));
        }
    }

    #[test]
    fn vector_features_need_their_register_state() {
        let l = everything();
        // No XSAVE enabled by the OS: no AVX of any kind; the rest stays.
        let f = decode(&l, 0);
        assert!(!f.avx && !f.avx2 && !f.fma && !f.f16c && !f.avx512f && !f.avx512vnni);
        assert!(f.sse42 && f.monitor && f.x2apic && f.hypervisor && f.invariant_tsc);
        // YMM state only (x87, SSE, AVX): the AVX2 path, no AVX-512.
        let f = decode(&l, 0b111);
        assert!(f.has_avx2_path() && !f.avx512f && !f.avx512bw && !f.avx512vl && !f.avx512vnni);
        // Opmask and ZMM state without the upper YMM half are not enough.
        assert!(!decode(&l, 0b1110_0011).avx512f);
    }

    #[test]
    fn missing_leaves_decode_as_absent() {
        let f = decode(&Leaves { max: 0x14, leaf15: [2, 166, 24_000_000], leaf16_eax: 3000, ..everything() }, 0xE7);
        assert_eq!((f.tsc_leaf, f.base_mhz), (None, None));
        let f = decode(&Leaves { leaf15: [0, 166, 24_000_000], leaf16_eax: 0xFFFF_0000, ..everything() }, 0xE7);
        assert_eq!(f.tsc_leaf.unwrap().tsc_khz(), None, "a zero denominator is not enumerated");
        assert_eq!(f.base_mhz, None, "`EAX[15:0]` = 0 means no frequency");
    }
}
