//! AVX-512 group kernels for Q5_0 and Q4_K/Q5_K on ggml's layout: the
//! scheme of [`super::avx2_kquants`] with two 32-column blocks per 512-bit
//! vector. Each row's integer products of blocks `b` and `b + 1` come from one
//! `vpmaddubsw` + `vpmaddwd` (AVX-512 BW) or one `vpdpbusd` (VNNI); Q5_0's
//! fifth bits are a 64-bit mask (`qh` of both blocks) applied with a masked
//! move. The 512-bit sums are split into their 256-bit halves and reduced per
//! block exactly as on AVX2, then go through the very same float sequence,
//! block `b` first, so the bits equal the scalar reference's. The other new
//! types (and an odd last block) use the AVX2 kernels.

use core::arch::x86_64::*;

use super::avx2::{gather_f16, prefetch_rows, reduce8, GROUP};
use super::avx2_kquants;
use super::ActBuf;
use crate::ggml_type::GgmlType;
use crate::quant::kquants::{at, scales_mins_k4, Q5_0_QH_AT, QK_K};
use crate::quant::QK;

const SUB: usize = QK_K / QK;

/// Generates one ISA's kernels: `$dot(q, a)` gives 16 i32 lanes whose first
/// 8 sum to block `b`'s integer dot product and last 8 to block `b + 1`'s.
macro_rules! kernels {
    ($feat:literal, $group:ident, $q5_0:ident, $q45_k:ident, $dot:ident) => {
        /// The group kernel for `ty` (see [`avx2_kquants::group`]).
        ///
        /// # Safety
        /// The CPU has the features of this path; the rest as [`avx2_kquants::group`].
        #[target_feature(enable = $feat)]
        pub(super) unsafe fn $group(ty: GgmlType, ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
            // SAFETY: forwarded.
            unsafe {
                match ty {
                    GgmlType::Q5_0 => $q5_0(ptrs, acts, t),
                    GgmlType::Q4_K => $q45_k::<false>(ptrs, acts, t),
                    GgmlType::Q5_K => $q45_k::<true>(ptrs, acts, t),
                    _ => avx2_kquants::group(ty, ptrs, acts, t),
                }
            }
        }

        #[target_feature(enable = $feat)]
        unsafe fn $q5_0(ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
            let bb = GgmlType::Q5_0.block_bytes();
            let (qs, d, sum) = (acts.qs(t), acts.d(t), acts.sum(t));
            let nb = d.len();
            let mut acc = _mm256_setzero_ps();
            let mut b = 0;
            while b + 2 <= nb {
                // SAFETY: blocks b and b + 1 exist: 64 quants.
                let a = unsafe { _mm512_loadu_si512(qs.as_ptr().add(b * QK) as *const _) };
                prefetch_rows(ptrs, b, bb);
                let v: [__m512i; GROUP] = core::array::from_fn(|i| {
                    // SAFETY: blocks b and b + 1 of each row lie inside the row.
                    let q = unsafe {
                        let p = ptrs[i].add(b * bb);
                        let lo = _mm_loadu_si128(p.add(Q5_0_QH_AT + 4) as *const __m128i);
                        let hi = _mm_loadu_si128(p.add(bb + Q5_0_QH_AT + 4) as *const __m128i);
                        // [lo, lo >> 4, hi, hi >> 4] & 0x0f: elements 0..32 of each block.
                        let src = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(lo, lo)), _mm256_set_m128i(hi, hi), 1);
                        let nib = _mm512_and_si512(_mm512_mask_blend_epi64(0b1100_1100, src, _mm512_srli_epi16(src, 4)), _mm512_set1_epi8(0x0f));
                        let qh0 = (p.add(Q5_0_QH_AT) as *const u32).read_unaligned() as u64;
                        let qh1 = (p.add(bb + Q5_0_QH_AT) as *const u32).read_unaligned() as u64;
                        _mm512_or_si512(nib, _mm512_maskz_mov_epi8(qh0 | (qh1 << 32), _mm512_set1_epi8(0x10)))
                    };
                    $dot(q, a)
                });
                let (lo, hi) = split(&v);
                for (k, isum) in [(b, lo), (b + 1, hi)] {
                    // sum((q - 16) * a) = sum(q * a) - 16 * sum(a), exactly.
                    let isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(16 * sum[k]));
                    // SAFETY: d is the block's first two bytes.
                    let dw = unsafe { gather_f16(ptrs, k * bb) };
                    acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(d[k])), _mm256_cvtepi32_ps(isum), acc);
                }
                b += 2;
            }
            if b < nb {
                // The odd last block, as the AVX2 kernel computes it.
                // SAFETY: forwarded; the tail kernel starts at block b.
                acc = unsafe { avx2_kquants::q5_0_tail(ptrs, acts, t, b, acc) };
            }
            acc
        }

        #[target_feature(enable = $feat)]
        unsafe fn $q45_k<const FIVE: bool>(ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
            let bb = if FIVE { GgmlType::Q5_K.block_bytes() } else { GgmlType::Q4_K.block_bytes() };
            let qs_at = if FIVE { at::Q5_K_QS } else { at::Q4_K_QS };
            let (qs, d, sum) = (acts.qs(t), acts.d(t), acts.sum(t));
            let mut acc = _mm256_setzero_ps();
            let mut macc = _mm256_setzero_ps();
            for sb in 0..d.len() / SUB {
                prefetch_rows(ptrs, sb, bb);
                let base: [*const u8; GROUP] = core::array::from_fn(|i| ptrs[i].wrapping_add(sb * bb));
                // SAFETY: super-block sb of each row lies inside the row: d, dmin first.
                let (dw, dmin) = unsafe { (gather_f16(&base, 0), gather_f16(&base, 2)) };
                let mut sc_t = [[0u8; GROUP]; SUB];
                let mut m_t = [[0u8; GROUP]; SUB];
                for (i, p) in base.iter().enumerate() {
                    // SAFETY: the 12 scale bytes follow d and dmin.
                    let s = scales_mins_k4(unsafe { core::slice::from_raw_parts(p.add(at::Q4_K_SCALES), 12) });
                    for j in 0..SUB {
                        sc_t[j][i] = s[j];
                        m_t[j][i] = s[SUB + j];
                    }
                }
                // Sub-blocks j and j + 1 share 32 quant bytes: low and high nibbles.
                for j in (0..SUB).step_by(2) {
                    let b = sb * SUB + j;
                    // SAFETY: blocks b and b + 1 exist: 64 quants.
                    let a = unsafe { _mm512_loadu_si512(qs.as_ptr().add(b * QK) as *const _) };
                    let v: [__m512i; GROUP] = core::array::from_fn(|i| {
                        // SAFETY: the quants (and qh) lie inside the super-block.
                        let q = unsafe {
                            let raw = _mm256_loadu_si256(base[i].add(qs_at + 16 * j) as *const __m256i);
                            let wide = _mm512_inserti64x4(_mm512_castsi256_si512(raw), _mm256_srli_epi16(raw, 4), 1);
                            let low = _mm512_and_si512(wide, _mm512_set1_epi8(0x0f));
                            if FIVE {
                                // Bits j and j + 1 of qh[l] are the fifth bits of the two blocks.
                                let qh = _mm256_srl_epi16(_mm256_loadu_si256(base[i].add(at::Q5_K_QH) as *const __m256i), _mm_cvtsi32_si128(j as i32));
                                let hw = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 1), 1);
                                let high = _mm512_slli_epi16(_mm512_and_si512(hw, _mm512_set1_epi8(1)), 4);
                                _mm512_or_si512(low, high)
                            } else {
                                low
                            }
                        };
                        $dot(q, a)
                    });
                    let (lo, hi) = split(&v);
                    for (jj, raw) in [(j, lo), (j + 1, hi)] {
                        let b = sb * SUB + jj;
                        // SAFETY: 8 bytes each.
                        let (sc, m) = unsafe { (bytes8_to_i32(sc_t[jj].as_ptr()), bytes8_to_i32(m_t[jj].as_ptr())) };
                        let isum = _mm256_mullo_epi32(raw, sc);
                        let msum = _mm256_mul_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(sum[b] as f32));
                        acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(d[b])), _mm256_cvtepi32_ps(isum), acc);
                        macc = _mm256_fmadd_ps(_mm256_mul_ps(dmin, _mm256_set1_ps(d[b])), msum, macc);
                    }
                }
            }
            _mm256_sub_ps(acc, macc)
        }
    };
}

/// Splits 8 rows' 512-bit partial sums into the two blocks' 8 totals per row.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn split(v: &[__m512i; GROUP]) -> (__m256i, __m256i) {
    let lo: [__m256i; GROUP] = core::array::from_fn(|i| _mm512_castsi512_si256(v[i]));
    let hi: [__m256i; GROUP] = core::array::from_fn(|i| _mm512_extracti64x4_epi64(v[i], 1));
    (reduce8(&lo), reduce8(&hi))
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn bytes8_to_i32(p: *const u8) -> __m256i {
    // SAFETY: caller guarantees 8 readable bytes.
    _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(p as *const __m128i) })
}

/// Unsigned `q` (< 64) times signed `a`, pairs summed in 16 bits, then in 32.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn dot_bw(q: __m512i, a: __m512i) -> __m512i {
    _mm512_madd_epi16(_mm512_maddubs_epi16(q, a), _mm512_set1_epi16(1))
}

/// The same sums with `vpdpbusd` (4 products per i32 lane, no 16-bit step).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dot_vnni(q: __m512i, a: __m512i) -> __m512i {
    _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, a)
}

kernels!("avx512f,avx512bw,avx512vl,avx2,fma,f16c", group_avx512, q5_0_avx512, q45_k_avx512, dot_bw);
kernels!("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c", group_vnni, q5_0_vnni, q45_k_vnni, dot_vnni);
