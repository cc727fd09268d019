//! AVX2 and AVX-512 versions of the attention helpers of
//! [`super::Kernels`]: reading KV cache rows back to f32
//! ([`crate::state::KvType::decode`]), one query's scores against a
//! transposed tile of keys ([`super::vector::dots_t`]) and the probability-weighted sum of
//! a tile of values ([`super::vector::weighted_sum`]). Each computes exactly
//! the portable definition's sequence of IEEE operations:
//!
//! - decoding is exact (F16 widening; Q8_0's `d · q` fits f32);
//! - scores against transposed keys ([`super::vector::dots_t`]) are one
//!   `fma` chain per position over the dimensions in order: lanes are
//!   positions, so the vector width does not matter;
//! - the weighted sum is one `fma` chain per output element, so the vector
//!   width does not matter.
//!
//! The way in is [`AttnSimd`], made only from a kernel path whose proof
//! values say the instructions exist; its methods check the lengths the raw
//! loads rely on.

use core::arch::x86_64::*;

use super::Path;
use crate::quant::{f16_to_f32, BlockQ8_0, QK};
use crate::state::KvType;

/// Proof that the AVX2 set runs, and whether AVX-512 F/BW/VL does too.
#[derive(Clone, Copy)]
pub(super) struct AttnSimd {
    wide: bool,
}

impl AttnSimd {
    /// The SIMD attention kernels of `path`, if it has any.
    pub(super) fn of(path: Path) -> Option<AttnSimd> {
        match path {
            Path::Scalar => None,
            Path::Avx2(_) => Some(AttnSimd { wide: false }),
            Path::Avx512(..) | Path::Avx512Vnni(..) => Some(AttnSimd { wide: true }),
        }
    }

    pub(super) fn decode_kv(self, kv: KvType, src: &[u8], out: &mut [f32]) {
        check_decode(kv, src, out);
        if self.wide {
            // SAFETY: `of` saw the AVX-512 path's proof; lengths checked.
            unsafe { decode_kv_avx512(kv, src, out) }
        } else {
            // SAFETY: `of` saw a SIMD path's proof (AVX2 at least); lengths checked.
            unsafe { decode_kv_avx2(kv, src, out) }
        }
    }

    pub(super) fn dots_t(self, q: &[f32], kt: &[f32], stride: usize, cols: core::ops::Range<usize>, out: &mut [f32]) {
        assert!(cols.len() == out.len() && cols.end <= stride && kt.len() >= (q.len().max(1) - 1) * stride + cols.end);
        let base = &kt[cols.start..];
        if self.wide {
            // SAFETY: as in `decode_kv`; every load is below (hd - 1) * stride + cols.len() of `base` (asserted).
            unsafe { dots_t_avx512(q, base, stride, out) }
        } else {
            // SAFETY: as above.
            unsafe { dots_t_avx2(q, base, stride, out, 0) }
        }
    }

    /// [`Self::dots_t`] on an f16 cache block (`kt`: bytes of halves).
    pub(super) fn dots_t_f16(self, q: &[f32], kt: &[u8], stride: usize, cols: core::ops::Range<usize>, out: &mut [f32]) {
        let kt = halves(kt);
        assert!(cols.len() == out.len() && cols.end <= stride && kt.len() >= (q.len().max(1) - 1) * stride + cols.end);
        let base = &kt[cols.start..];
        if self.wide {
            // SAFETY: as in `decode_kv`; loads bounded as asserted.
            unsafe { dots_t_f16_avx512(q, base, stride, out) }
        } else {
            // SAFETY: as above.
            unsafe { dots_t_f16_avx2(q, base, stride, out, 0) }
        }
    }

    /// [`Self::weighted_sum`] on f16 cache rows (`rows`: bytes of halves).
    pub(super) fn weighted_sum_f16(self, probs: &[f32], rows: &[u8], out: &mut [f32]) {
        let rows = halves(rows);
        assert_eq!(rows.len(), probs.len() * out.len());
        if self.wide {
            // SAFETY: as in `decode_kv`; lengths asserted.
            unsafe { weighted_sum_f16_avx512(probs, rows, out) }
        } else {
            // SAFETY: as in `decode_kv`; lengths asserted.
            unsafe { weighted_sum_f16_avx2(probs, rows, out) }
        }
    }

    pub(super) fn weighted_sum(self, probs: &[f32], rows: &[f32], out: &mut [f32]) {
        assert_eq!(rows.len(), probs.len() * out.len());
        if self.wide {
            // SAFETY: as in `decode_kv`; lengths asserted.
            unsafe { weighted_sum_avx512(probs, rows, out) }
        } else {
            // SAFETY: as in `decode_kv`; lengths asserted.
            unsafe { weighted_sum_avx2(probs, rows, out) }
        }
    }
}

/// Lengths the kernels below rely on: `src` holds the rows `out` asks for.
fn check_decode(kv: KvType, src: &[u8], out: &[f32]) {
    let needed = match kv {
        KvType::F32 => out.len() * 4,
        KvType::F16 => out.len() * 2,
        KvType::Q8_0 => {
            assert!(out.len().is_multiple_of(QK), "{} Q8_0 values", out.len());
            out.len() / QK * BlockQ8_0::BYTES
        }
    };
    assert!(src.len() >= needed, "KV rows: {} bytes for {needed}", src.len());
}

// ------------------------------------------------------------------- AVX2

/// # Safety
/// AVX2, FMA and F16C are available; [`check_decode`] holds.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn decode_kv_avx2(kv: KvType, src: &[u8], out: &mut [f32]) {
    let (s, o, n) = (src.as_ptr(), out.as_mut_ptr(), out.len());
    match kv {
        KvType::F32 => kv.decode(src, out),
        KvType::F16 => {
            let mut i = 0;
            while i + 8 <= n {
                // SAFETY: 8 halves at 2i < 2n <= src.len(); 8 floats at i + 8 <= n.
                unsafe { _mm256_storeu_ps(o.add(i), _mm256_cvtph_ps(_mm_loadu_si128(s.add(2 * i).cast()))) };
                i += 8;
            }
            kv.decode(&src[2 * i..], &mut out[i..]);
        }
        KvType::Q8_0 => {
            for b in 0..n / QK {
                // SAFETY: block b lies inside src (check_decode), its 32 floats inside out.
                unsafe {
                    let blk = s.add(b * BlockQ8_0::BYTES);
                    let d = _mm256_set1_ps(f16_to_f32(u16::from_le_bytes([*blk, *blk.add(1)])));
                    for k in 0..4 {
                        let q = _mm_loadl_epi64(blk.add(BlockQ8_0::QS_AT + 8 * k).cast());
                        let v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
                        _mm256_storeu_ps(o.add(b * QK + 8 * k), _mm256_mul_ps(d, v));
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- AVX-512

/// # Safety
/// AVX-512 F/BW/VL and the AVX2 set are available; [`check_decode`] holds.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn decode_kv_avx512(kv: KvType, src: &[u8], out: &mut [f32]) {
    let (s, o, n) = (src.as_ptr(), out.as_mut_ptr(), out.len());
    match kv {
        KvType::F32 => kv.decode(src, out),
        KvType::F16 => {
            let mut i = 0;
            while i + 16 <= n {
                // SAFETY: 16 halves at 2i, 16 floats at i, both in bounds.
                unsafe { _mm512_storeu_ps(o.add(i), _mm512_cvtph_ps(_mm256_loadu_si256(s.add(2 * i).cast()))) };
                i += 16;
            }
            // SAFETY: the rest, by the AVX2 kernel (same bits).
            unsafe { decode_kv_avx2(kv, &src[2 * i..], &mut out[i..]) }
        }
        KvType::Q8_0 => {
            for b in 0..n / QK {
                // SAFETY: block b lies inside src (check_decode), its 32 floats inside out.
                unsafe {
                    let blk = s.add(b * BlockQ8_0::BYTES);
                    let d = _mm512_set1_ps(f16_to_f32(u16::from_le_bytes([*blk, *blk.add(1)])));
                    for k in 0..2 {
                        let q = _mm_loadu_si128(blk.add(BlockQ8_0::QS_AT + 16 * k).cast());
                        let v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
                        _mm512_storeu_ps(o.add(b * QK + 16 * k), _mm512_mul_ps(d, v));
                    }
                }
            }
        }
    }
}

// -------------------------------------- scores and weighted sums, per element type

/// Loads of 8 and 16 elements widened to f32, and one element, for the
/// element types the kernels below read: f32 tiles and f16 cache rows.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn ld8_f32(p: *const f32) -> __m256 {
    // SAFETY: the caller's bounds.
    unsafe { _mm256_loadu_ps(p) }
}
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn ld16_f32(p: *const f32) -> __m512 {
    // SAFETY: the caller's bounds.
    unsafe { _mm512_loadu_ps(p) }
}
#[inline]
fn sc_f32(v: f32) -> f32 {
    v
}
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn ld8_f16(p: *const u16) -> __m256 {
    // SAFETY: the caller's bounds (8 halves).
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
}
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn ld16_f16(p: *const u16) -> __m512 {
    // SAFETY: the caller's bounds (16 halves).
    unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
}

/// Generates, for one element type, [`super::vector::weighted_sum`] and
/// [`super::vector::dots_t`] on AVX2 and AVX-512 (elements widened exactly
/// to f32 by `$l8` / `$l16` / `$sc`).
macro_rules! attn_kernels {
    ($t:ty, $l8:ident, $l16:ident, $sc:path, $ws2:ident, $wstail:ident, $ws512:ident, $dt2:ident, $dt512:ident) => {
        /// # Safety
        /// AVX2, FMA and F16C are available; `rows.len() == probs.len() * out.len()`.
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $ws2(probs: &[f32], rows: &[$t], out: &mut [f32]) {
            let hd = out.len();
            let mut d = 0;
            while d + 32 <= hd {
                let mut acc = [_mm256_setzero_ps(); 4];
                for (t, &p) in probs.iter().enumerate() {
                    let pv = _mm256_set1_ps(p);
                    for (k, a) in acc.iter_mut().enumerate() {
                        // SAFETY: t * hd + d + 8k + 8 <= (t + 1) * hd <= rows.len().
                        *a = _mm256_fmadd_ps(pv, unsafe { $l8(rows.as_ptr().add(t * hd + d + 8 * k)) }, *a);
                    }
                }
                for (k, a) in acc.iter().enumerate() {
                    // SAFETY: d + 8k + 8 <= hd.
                    unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(d + 8 * k), *a) };
                }
                d += 32;
            }
            // SAFETY: forwarded.
            unsafe { $wstail(probs, rows, out, d) }
        }

        /// Columns `d..` of the weighted sum, 8 and then 1 at a time.
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $wstail(probs: &[f32], rows: &[$t], out: &mut [f32], mut d: usize) {
            let hd = out.len();
            while d + 8 <= hd {
                let mut acc = _mm256_setzero_ps();
                for (t, &p) in probs.iter().enumerate() {
                    // SAFETY: t * hd + d + 8 <= rows.len().
                    acc = _mm256_fmadd_ps(_mm256_set1_ps(p), unsafe { $l8(rows.as_ptr().add(t * hd + d)) }, acc);
                }
                // SAFETY: d + 8 <= hd.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(d), acc) };
                d += 8;
            }
            for (j, o) in out.iter_mut().enumerate().skip(d) {
                *o = 0.0;
                for (t, &p) in probs.iter().enumerate() {
                    *o = libm::fmaf(p, $sc(rows[t * hd + j]), *o);
                }
            }
        }

        /// # Safety
        /// AVX-512 F/BW/VL and the AVX2 set are available; `rows.len() == probs.len() * out.len()`.
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
        unsafe fn $ws512(probs: &[f32], rows: &[$t], out: &mut [f32]) {
            let hd = out.len();
            let mut d = 0;
            while d + 64 <= hd {
                let mut acc = [_mm512_setzero_ps(); 4];
                for (t, &p) in probs.iter().enumerate() {
                    let pv = _mm512_set1_ps(p);
                    for (k, a) in acc.iter_mut().enumerate() {
                        // SAFETY: t * hd + d + 16k + 16 <= (t + 1) * hd <= rows.len().
                        *a = _mm512_fmadd_ps(pv, unsafe { $l16(rows.as_ptr().add(t * hd + d + 16 * k)) }, *a);
                    }
                }
                for (k, a) in acc.iter().enumerate() {
                    // SAFETY: d + 16k + 16 <= hd.
                    unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(d + 16 * k), *a) };
                }
                d += 64;
            }
            while d + 16 <= hd {
                let mut acc = _mm512_setzero_ps();
                for (t, &p) in probs.iter().enumerate() {
                    // SAFETY: t * hd + d + 16 <= rows.len().
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(p), unsafe { $l16(rows.as_ptr().add(t * hd + d)) }, acc);
                }
                // SAFETY: d + 16 <= hd.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(d), acc) };
                d += 16;
            }
            // SAFETY: forwarded.
            unsafe { $wstail(probs, rows, out, d) }
        }

        /// [`super::vector::dots_t`] for `out.len()` positions from the
        /// start of `kt` (already offset), from position `j` on, 32 then 8
        /// then 1 at a time.
        ///
        /// # Safety
        /// AVX2, FMA and F16C are available; `kt` holds `(q.len() - 1) * stride + out.len()` elements.
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $dt2(q: &[f32], kt: &[$t], stride: usize, out: &mut [f32], mut j: usize) {
            let (n, kp) = (out.len(), kt.as_ptr());
            while j + 32 <= n {
                let mut acc = [_mm256_setzero_ps(); 4];
                for (d, &qd) in q.iter().enumerate() {
                    let qv = _mm256_set1_ps(qd);
                    for (k, a) in acc.iter_mut().enumerate() {
                        // SAFETY: d * stride + j + 8k + 8 <= (hd - 1) * stride + n.
                        *a = _mm256_fmadd_ps(qv, unsafe { $l8(kp.add(d * stride + j + 8 * k)) }, *a);
                    }
                }
                for (k, a) in acc.iter().enumerate() {
                    // SAFETY: j + 8k + 8 <= n.
                    unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(j + 8 * k), *a) };
                }
                j += 32;
            }
            while j + 8 <= n {
                let mut acc = _mm256_setzero_ps();
                for (d, &qd) in q.iter().enumerate() {
                    // SAFETY: d * stride + j + 8 <= (hd - 1) * stride + n.
                    acc = _mm256_fmadd_ps(_mm256_set1_ps(qd), unsafe { $l8(kp.add(d * stride + j)) }, acc);
                }
                // SAFETY: j + 8 <= n.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(j), acc) };
                j += 8;
            }
            for (jj, o) in out.iter_mut().enumerate().skip(j) {
                *o = 0.0;
                for (d, &qd) in q.iter().enumerate() {
                    *o = libm::fmaf(qd, $sc(kt[d * stride + jj]), *o);
                }
            }
        }

        /// # Safety
        /// AVX-512 F/BW/VL and the AVX2 set are available; as the AVX2 version.
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
        unsafe fn $dt512(q: &[f32], kt: &[$t], stride: usize, out: &mut [f32]) {
            let (n, kp) = (out.len(), kt.as_ptr());
            let mut j = 0;
            while j + 64 <= n {
                let mut acc = [_mm512_setzero_ps(); 4];
                for (d, &qd) in q.iter().enumerate() {
                    let qv = _mm512_set1_ps(qd);
                    for (k, a) in acc.iter_mut().enumerate() {
                        // SAFETY: d * stride + j + 16k + 16 <= (hd - 1) * stride + n.
                        *a = _mm512_fmadd_ps(qv, unsafe { $l16(kp.add(d * stride + j + 16 * k)) }, *a);
                    }
                }
                for (k, a) in acc.iter().enumerate() {
                    // SAFETY: j + 16k + 16 <= n.
                    unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(j + 16 * k), *a) };
                }
                j += 64;
            }
            while j + 16 <= n {
                let mut acc = _mm512_setzero_ps();
                for (d, &qd) in q.iter().enumerate() {
                    // SAFETY: d * stride + j + 16 <= (hd - 1) * stride + n.
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(qd), unsafe { $l16(kp.add(d * stride + j)) }, acc);
                }
                // SAFETY: j + 16 <= n.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(j), acc) };
                j += 16;
            }
            // SAFETY: forwarded; the AVX2 set is available.
            unsafe { $dt2(q, kt, stride, out, j) }
        }
    };
}

attn_kernels!(f32, ld8_f32, ld16_f32, sc_f32, weighted_sum_avx2, weighted_sum_tail, weighted_sum_avx512, dots_t_avx2, dots_t_avx512);
attn_kernels!(u16, ld8_f16, ld16_f16, f16_to_f32, weighted_sum_f16_avx2, weighted_sum_f16_tail, weighted_sum_f16_avx512, dots_t_f16_avx2, dots_t_f16_avx512);

/// `bytes` as little-endian halves. Panics if the length is odd or the
/// start is not 2-byte aligned (cache rows always are).
fn halves(bytes: &[u8]) -> &[u16] {
    assert!(bytes.len().is_multiple_of(2) && (bytes.as_ptr() as usize).is_multiple_of(2), "f16 cache bytes misaligned");
    // SAFETY: aligned and in bounds (checked above); every bit pattern is a
    // u16; the lifetime is the input's. x86 is little-endian, as the cache.
    unsafe { core::slice::from_raw_parts(bytes.as_ptr().cast::<u16>(), bytes.len() / 2) }
}
