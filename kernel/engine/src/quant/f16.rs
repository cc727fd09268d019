//! IEEE 754 half precision, converted exactly as ggml converts it.
//!
//! `f16 -> f32` is exact. `f32 -> f16` rounds to nearest, ties to even, like
//! both of ggml's conversions (its software `ggml_compute_fp32_to_fp16` and the
//! F16C instruction `vcvtps2ph`), so quantized blocks written here are
//! bit-identical to ggml's. A NaN becomes `0x7E00` with the input's sign, as in
//! ggml's software conversion.

/// Converts half-precision bits to `f32` (exact: every half is an `f32`).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if man == 0 => sign,
        0 => {
            // Subnormal: man * 2^-24, exact in f32.
            let v = man as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        31 => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Converts `f32` to half-precision bits, rounding to nearest even; values
/// beyond the half range become infinity, NaN becomes a quiet NaN.
#[inline]
pub fn f32_to_f16(f: f32) -> u16 {
    let x = f.to_bits();
    let sign = ((x >> 16) & 0x8000) as u16;
    let abs = x & 0x7fff_ffff;
    if abs > 0x7f80_0000 {
        return sign | 0x7e00; // NaN
    }
    if abs >= 0x477f_f000 {
        return sign | 0x7c00; // >= 65520 rounds to infinity (and infinity itself)
    }
    if abs < 0x3880_0000 {
        // Below the smallest normal half (2^-14): a subnormal or zero.
        if abs <= 0x3300_0000 {
            return sign; // <= 2^-25 rounds to zero (2^-25 is a tie, zero is even)
        }
        let exp = abs >> 23;
        let man = (abs & 0x7f_ffff) | 0x80_0000;
        // The value is man * 2^(exp-150); in units of 2^-24 that is man >> (126-exp).
        let shift = 126 - exp;
        let q = man >> shift;
        let rem = man & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        let q = if rem > half || (rem == half && q & 1 == 1) {
            q + 1
        } else {
            q
        };
        return sign | q as u16;
    }
    let exp16 = (abs >> 23) - 112;
    let man = abs & 0x7f_ffff;
    let q = (exp16 << 10) | (man >> 13);
    let rem = man & 0x1fff;
    // A carry out of the mantissa correctly bumps the exponent.
    let q = if rem > 0x1000 || (rem == 0x1000 && q & 1 == 1) {
        q + 1
    } else {
        q
    };
    sign | q as u16
}

/// Rounds an `f32` through half precision (what storing it in a block does).
#[inline]
pub fn round_f16(f: f32) -> f32 {
    f16_to_f32(f32_to_f16(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_half_round_trips() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert!(f32_to_f16(f) & 0x7c00 == 0x7c00 && f32_to_f16(f) & 0x3ff != 0);
                continue;
            }
            assert_eq!(f32_to_f16(f), h, "half {h:#06x} -> {f}");
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(-2.0), 0xc000);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(65519.0), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(1e-8), 0x0000);
        assert_eq!(f32_to_f16(f32::NAN), 0x7e00);
        assert_eq!(f32_to_f16(f32::NEG_INFINITY), 0xfc00);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        // Ties go to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
        assert_eq!(f32_to_f16(1.0 + 1.0 / 2048.0), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 / 2048.0), 0x3c02);
    }

    /// Matches the F16C instruction (what ggml's CPU backend uses) on a wide
    /// spread of inputs, subnormals and overflow included.
    #[test]
    #[cfg_attr(not(axiom_cpu_f16c), ignore = "this machine lacks F16C")]
    #[allow(unsafe_code)] // calls the F16C instruction
    fn matches_f16c_hardware() {
        assert!(std::is_x86_feature_detected!("f16c"), "built on a machine with F16C, running on one without: rebuild the tests here");
        #[target_feature(enable = "f16c")]
        unsafe fn hw(f: f32) -> u16 {
            use core::arch::x86_64::*;
            _mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0) as u16
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..2_000_000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Exponents around the half range, plus raw random bit patterns.
            let bits = if i % 2 == 0 {
                let e = 95 + (state >> 40) as u32 % 50;
                ((state as u32) & 0x807f_ffff) | (e << 23)
            } else {
                state as u32
            };
            let f = f32::from_bits(bits);
            if f.is_nan() {
                continue;
            }
            // SAFETY: F16C presence asserted above.
            assert_eq!(f32_to_f16(f), unsafe { hw(f) }, "{f:e} ({bits:#010x})");
        }
    }
}
