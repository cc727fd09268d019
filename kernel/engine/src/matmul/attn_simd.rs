//! AVX2 and AVX-512 versions of the attention helpers of
//! [`super::Kernels`]: reading KV cache rows back to f32
//! ([`crate::state::KvType::decode`]), one query's dot products against a
//! tile of keys ([`super::vector::dots`]) and the probability-weighted sum of
//! a tile of values ([`super::vector::weighted_sum`]). Each computes exactly
//! the portable definition's sequence of IEEE operations:
//!
//! - decoding is exact (F16 widening; Q8_0's `d · q` fits f32);
//! - a dot product keeps [`super::vector::dot_f32`]'s order: four 8-lane
//!   accumulators over 32-element chunks, `(a0 + a1) + (a2 + a3)`, 8-lane
//!   steps, `hsum8`, scalar tail. AVX-512 holds `a0|a1` and `a2|a3` in two
//!   ZMM registers and adds their halves in that order;
//! - the weighted sum is one `fma` chain per output element, so the vector
//!   width does not matter.
//!
//! The way in is [`AttnSimd`], made only from a kernel path whose proof
//! values say the instructions exist; its methods check the lengths the raw
//! loads rely on.

use core::arch::x86_64::*;

use super::avx2::{dot_f32, hsum_ps};
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

    pub(super) fn dots(self, q: &[f32], rows: &[f32], out: &mut [f32]) {
        assert_eq!(rows.len(), out.len() * q.len());
        if self.wide {
            // SAFETY: as in `decode_kv`; lengths asserted.
            unsafe { dots_avx512(q, rows, out) }
        } else {
            // SAFETY: as in `decode_kv`; lengths asserted.
            unsafe { dots_avx2(q, rows, out) }
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

/// # Safety
/// AVX2, FMA and F16C are available; `rows.len() == out.len() * q.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dots_avx2(q: &[f32], rows: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len())) {
        // SAFETY: equal lengths; the features are the caller's.
        *o = unsafe { dot_f32(q, row) };
    }
}

/// # Safety
/// AVX2, FMA and F16C are available; `rows.len() == probs.len() * out.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn weighted_sum_avx2(probs: &[f32], rows: &[f32], out: &mut [f32]) {
    let hd = out.len();
    let mut d = 0;
    while d + 32 <= hd {
        let mut acc = [_mm256_setzero_ps(); 4];
        for (t, &p) in probs.iter().enumerate() {
            let pv = _mm256_set1_ps(p);
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: t * hd + d + 8k + 8 <= (t + 1) * hd <= rows.len().
                *a = _mm256_fmadd_ps(pv, unsafe { _mm256_loadu_ps(rows.as_ptr().add(t * hd + d + 8 * k)) }, *a);
            }
        }
        for (k, a) in acc.iter().enumerate() {
            // SAFETY: d + 8k + 8 <= hd.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(d + 8 * k), *a) };
        }
        d += 32;
    }
    // SAFETY: forwarded.
    unsafe { weighted_sum_tail(probs, rows, out, d) }
}

/// Columns `d..` of the weighted sum, 8 and then 1 at a time.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn weighted_sum_tail(probs: &[f32], rows: &[f32], out: &mut [f32], mut d: usize) {
    let hd = out.len();
    while d + 8 <= hd {
        let mut acc = _mm256_setzero_ps();
        for (t, &p) in probs.iter().enumerate() {
            // SAFETY: t * hd + d + 8 <= rows.len().
            acc = _mm256_fmadd_ps(_mm256_set1_ps(p), unsafe { _mm256_loadu_ps(rows.as_ptr().add(t * hd + d)) }, acc);
        }
        // SAFETY: d + 8 <= hd.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(d), acc) };
        d += 8;
    }
    for (j, o) in out.iter_mut().enumerate().skip(d) {
        *o = 0.0;
        for (t, &p) in probs.iter().enumerate() {
            *o = libm::fmaf(p, rows[t * hd + j], *o);
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

/// # Safety
/// AVX-512 F/BW/VL and the AVX2 set are available; `rows.len() == out.len() * q.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn dots_avx512(q: &[f32], rows: &[f32], out: &mut [f32]) {
    let n = q.len();
    let qp = q.as_ptr();
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(n)) {
        let rp = row.as_ptr();
        // acc01 holds dot_f32's accumulators 0 (low half) and 1, acc23 2 and 3.
        let (mut acc01, mut acc23) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut i = 0;
        while i + 32 <= n {
            // SAFETY: i + 32 <= n, and q and row are n long.
            unsafe {
                acc01 = _mm512_fmadd_ps(_mm512_loadu_ps(qp.add(i)), _mm512_loadu_ps(rp.add(i)), acc01);
                acc23 = _mm512_fmadd_ps(_mm512_loadu_ps(qp.add(i + 16)), _mm512_loadu_ps(rp.add(i + 16)), acc23);
            }
            i += 32;
        }
        let half = |v: __m512, hi: bool| _mm256_castpd_ps(if hi { _mm512_extractf64x4_pd(_mm512_castps_pd(v), 1) } else { _mm512_castpd512_pd256(_mm512_castps_pd(v)) });
        let a = _mm256_add_ps(half(acc01, false), half(acc01, true));
        let b = _mm256_add_ps(half(acc23, false), half(acc23, true));
        let mut v = _mm256_add_ps(a, b);
        while i + 8 <= n {
            // SAFETY: i + 8 <= n, and q and row are n long.
            v = unsafe { _mm256_fmadd_ps(_mm256_loadu_ps(qp.add(i)), _mm256_loadu_ps(rp.add(i)), v) };
            i += 8;
        }
        let mut s = hsum_ps(v);
        while i < n {
            s = libm::fmaf(q[i], row[i], s);
            i += 1;
        }
        *o = s;
    }
}

/// # Safety
/// AVX-512 F/BW/VL and the AVX2 set are available; `rows.len() == probs.len() * out.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn weighted_sum_avx512(probs: &[f32], rows: &[f32], out: &mut [f32]) {
    let hd = out.len();
    let mut d = 0;
    while d + 64 <= hd {
        let mut acc = [_mm512_setzero_ps(); 4];
        for (t, &p) in probs.iter().enumerate() {
            let pv = _mm512_set1_ps(p);
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: t * hd + d + 16k + 16 <= (t + 1) * hd <= rows.len().
                *a = _mm512_fmadd_ps(pv, unsafe { _mm512_loadu_ps(rows.as_ptr().add(t * hd + d + 16 * k)) }, *a);
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
            acc = _mm512_fmadd_ps(_mm512_set1_ps(p), unsafe { _mm512_loadu_ps(rows.as_ptr().add(t * hd + d)) }, acc);
        }
        // SAFETY: d + 16 <= hd.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(d), acc) };
        d += 16;
    }
    // SAFETY: forwarded.
    unsafe { weighted_sum_tail(probs, rows, out, d) }
}
