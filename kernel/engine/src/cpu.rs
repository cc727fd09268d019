//! CPU feature detection by CPUID and XGETBV, usable without `std`.
//!
//! `is_x86_feature_detected!` lives in `std`, and the engine also runs on bare
//! kernel compute cores, so we ask the CPU ourselves. A vector extension counts
//! as present only when the CPU implements it (CPUID) *and* the operating
//! system (or our kernel) has enabled its register state in XCR0 (XGETBV):
//! executing AVX code with XCR0.AVX clear faults with #UD.

/// The instruction-set features the engine's kernels care about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// AVX2 with its 256-bit register state enabled.
    pub avx2: bool,
    /// FMA3 (`vfmadd*ps`).
    pub fma: bool,
    /// F16C (`vcvtph2ps` / `vcvtps2ph`).
    pub f16c: bool,
    /// AVX-512 Foundation, with opmask and ZMM state enabled.
    pub avx512f: bool,
    /// AVX-512 byte/word instructions (`vpmaddubsw` on ZMM).
    pub avx512bw: bool,
    /// AVX-512 vector-length extensions (EVEX encodings on XMM/YMM).
    pub avx512vl: bool,
    /// AVX-512 VNNI (`vpdpbusd`).
    pub avx512vnni: bool,
}

impl CpuFeatures {
    /// Queries the running CPU. Cheap enough to call once at start-up; the
    /// engine calls it when [`crate::matmul::Kernels`] are chosen.
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

#[cfg(target_arch = "x86_64")]
fn detect_impl() -> CpuFeatures {
    use core::arch::x86_64::__cpuid_count;

    // CPUID exists on every x86_64 CPU; leaf 0 gives the highest standard leaf.
    let max_leaf = __cpuid_count(0, 0).eax;
    if max_leaf < 1 {
        return CpuFeatures::default();
    }
    let leaf1 = __cpuid_count(1, 0);
    let osxsave = leaf1.ecx & (1 << 27) != 0;
    let avx = leaf1.ecx & (1 << 28) != 0;
    let fma = leaf1.ecx & (1 << 12) != 0;
    let f16c = leaf1.ecx & (1 << 29) != 0;
    if !(osxsave && avx) {
        return CpuFeatures::default();
    }
    let xcr0 = read_xcr0();
    // XCR0 bits: 1 = SSE, 2 = AVX (upper YMM); 5,6,7 = opmask, ZMM_Hi256, Hi16_ZMM.
    let ymm_state = xcr0 & 0b110 == 0b110;
    let zmm_state = ymm_state && xcr0 & 0b1110_0000 == 0b1110_0000;
    if !ymm_state {
        return CpuFeatures::default();
    }
    let (ebx7, ecx7) = if max_leaf >= 7 {
        let leaf7 = __cpuid_count(7, 0);
        (leaf7.ebx, leaf7.ecx)
    } else {
        (0, 0)
    };
    let avx2 = ebx7 & (1 << 5) != 0;
    let avx512f = zmm_state && ebx7 & (1 << 16) != 0;
    let avx512bw = zmm_state && ebx7 & (1 << 30) != 0;
    let avx512vl = zmm_state && ebx7 & (1 << 31) != 0;
    let avx512vnni = zmm_state && ecx7 & (1 << 11) != 0;
    CpuFeatures {
        avx2,
        fma,
        f16c,
        avx512f,
        avx512bw,
        avx512vl,
        avx512vnni,
    }
}

/// XCR0, the mask of register state the OS saves and so allows us to use.
#[cfg(target_arch = "x86_64")]
fn read_xcr0() -> u64 {
    #[target_feature(enable = "xsave")]
    unsafe fn xgetbv0() -> u64 {
        // SAFETY: the caller checked CPUID.1:ECX.OSXSAVE, which makes XGETBV
        // with ECX = 0 a valid, side-effect-free read.
        unsafe { core::arch::x86_64::_xgetbv(0) }
    }
    // SAFETY: only called after CPUID reported OSXSAVE (see detect_impl).
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
        assert_eq!(f.avx2, std::is_x86_feature_detected!("avx2"));
        assert_eq!(f.fma, std::is_x86_feature_detected!("fma"));
        assert_eq!(f.f16c, std::is_x86_feature_detected!("f16c"));
        assert_eq!(f.avx512f, std::is_x86_feature_detected!("avx512f"));
        assert_eq!(f.avx512bw, std::is_x86_feature_detected!("avx512bw"));
        assert_eq!(f.avx512vl, std::is_x86_feature_detected!("avx512vl"));
        assert_eq!(f.avx512vnni, std::is_x86_feature_detected!("avx512vnni"));
    }
}
