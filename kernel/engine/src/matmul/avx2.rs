//! AVX2 + FMA + F16C kernels on ggml's standard layout.
//!
//! Quantized matmuls work on groups of 8 output rows: each row's block gives
//! 8 partial integer sums (`vpmaddubsw` + `vpmaddwd`), a horizontal-add tree
//! turns the 8 rows' partials into one vector with one exact integer block
//! sum per row, and one FMA per block applies the 8 rows' scales. Each lane
//! therefore follows exactly the scalar reference's per-row sequence of
//! operations (see [`super`]), which makes the output independent of which
//! group, range or ISA computes a row. A short last group repeats its last row
//! in the unused lanes and discards them.
//!
//! The kernels need AVX2, FMA and F16C. The only way in is through an
//! [`Avx2`] value, which exists only once CPUID and XGETBV said so: its
//! methods are safe, check the shapes their raw loads rely on, and call the
//! `unsafe` kernels below.

use core::arch::x86_64::*;
use core::ops::Range;

use super::{check_shapes, ActBuf, Matrix, WeightMatrix, PREFETCH_DIST};
use crate::cpu::CpuFeatures;
use crate::ggml_type::GgmlType;
use crate::quant::{round_f16, BlockQ4_0, BlockQ4_1, BlockQ8_0, QK};

/// Which AVX-512 instructions a ggml-layout matmul may use (`super::avx2_kquants::group_vnni`).
#[derive(Clone, Copy, Debug)]
pub(super) enum Wide {
    /// AVX2 only.
    No,
    /// AVX-512 F/BW/VL.
    Avx512(super::avx512::Avx512),
    /// AVX-512 with VNNI.
    Vnni(super::avx512::Avx512Vnni),
}

/// Output rows per group.
pub(super) const GROUP: usize = 8;

/// Proof that this CPU runs AVX2, FMA and F16C with their register state
/// enabled: made only by [`Avx2::detect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Avx2(());

impl Avx2 {
    /// `Some` when CPUID and XGETBV report AVX2, FMA and F16C with YMM state.
    pub(super) fn detect() -> Option<Avx2> {
        CpuFeatures::detect().has_avx2_path().then_some(Avx2(()))
    }

    /// [`super::Kernels::quantize_activations`]'s Q8 blocks of `x` into `out`.
    pub(super) fn quantize_q8(self, x: &[f32], out: &mut ActBuf) {
        assert!(x.len().is_multiple_of(QK) && x.len() <= out.qs.len(), "{} activations for {} quants", x.len(), out.qs.len());
        // SAFETY: `self` proves the CPU features; the stores stay inside
        // `out.qs` (asserted above), everything else is checked indexing.
        unsafe { quantize_q8(x, out) }
    }

    /// [`super::Kernels::matmul`] on ggml's layout; `wide` (the AVX-512
    /// paths) runs the 512-bit kernels of the types that have them.
    pub(super) fn matmul(self, w: &WeightMatrix, acts: &ActBuf, rows: Range<usize>, out: &mut [f32], wide: Wide) {
        check_shapes(&Matrix::Ggml(*w), acts, &rows, out);
        // SAFETY: `self` (and `wide`'s capability value) proves the CPU
        // features; `check_shapes` checked that the rows lie inside `w.data`
        // and that `acts` holds `w.cols` values per token, which bounds every
        // raw load.
        unsafe { matmul(w, acts, rows, out, wide) }
    }

    /// [`super::vector::dot_f32`]'s result. Panics if the lengths differ.
    pub(super) fn dot_f32(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        // SAFETY: `self` proves the CPU features; equal lengths (asserted).
        unsafe { dot_f32(a, b) }
    }

    /// `y[i] = fma(a, x[i], y[i])`. Panics if the lengths differ.
    pub(super) fn axpy(self, y: &mut [f32], a: f32, x: &[f32]) {
        assert_eq!(y.len(), x.len());
        // SAFETY: `self` proves the CPU features; equal lengths (asserted).
        unsafe { axpy(y, a, x) }
    }

    /// `y[i] *= a`.
    pub(super) fn scale(self, y: &mut [f32], a: f32) {
        // SAFETY: `self` proves the CPU features.
        unsafe { scale(y, a) }
    }

    /// `y[i] += x[i]`. Panics if the lengths differ.
    pub(super) fn add(self, y: &mut [f32], x: &[f32]) {
        assert_eq!(y.len(), x.len());
        // SAFETY: `self` proves the CPU features; equal lengths (asserted).
        unsafe { add(y, x) }
    }

    /// `y[i] *= x[i]`. Panics if the lengths differ.
    pub(super) fn mul(self, y: &mut [f32], x: &[f32]) {
        assert_eq!(y.len(), x.len());
        // SAFETY: `self` proves the CPU features; equal lengths (asserted).
        unsafe { mul(y, x) }
    }

    /// Runs `f` compiled with AVX2 enabled (when the compiler inlines it,
    /// which it does for a closure called once): plain Rust loops in `f`
    /// vectorize to 256 bits. Rust never fuses a separate multiply and add,
    /// so `f` gives the same bits either way.
    #[inline]
    pub(super) fn vectorized<R>(self, f: impl FnOnce() -> R) -> R {
        #[target_feature(enable = "avx2")]
        unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: `self` proves AVX2.
        unsafe { with_avx2(f) }
    }
}

// ---------------------------------------------------------------- activations

/// Quantizes `x` into `out` exactly like `quantize_block_q8` (the scalar
/// reference), 32 floats at a time.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_q8(x: &[f32], out: &mut ActBuf) {
    let sign_bit = _mm256_set1_ps(-0.0);
    for (b, xb) in x.chunks_exact(QK).enumerate() {
        // SAFETY: xb has 32 floats; unaligned loads.
        let v = unsafe {
            [
                _mm256_loadu_ps(xb.as_ptr()),
                _mm256_loadu_ps(xb.as_ptr().add(8)),
                _mm256_loadu_ps(xb.as_ptr().add(16)),
                _mm256_loadu_ps(xb.as_ptr().add(24)),
            ]
        };
        let mut m = _mm256_andnot_ps(sign_bit, v[0]);
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign_bit, v[1]));
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign_bit, v[2]));
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign_bit, v[3]));
        let amax = hmax8(m);
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mul = _mm256_set1_ps(id);
        let i: [__m256i; 4] = core::array::from_fn(|k| {
            _mm256_cvtps_epi32(_mm256_round_ps(
                _mm256_mul_ps(v[k], mul),
                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
            ))
        });
        let sum = hsum_i32(_mm256_add_epi32(
            _mm256_add_epi32(i[0], i[1]),
            _mm256_add_epi32(i[2], i[3]),
        ));
        let p01 = _mm256_packs_epi32(i[0], i[1]);
        let p23 = _mm256_packs_epi32(i[2], i[3]);
        let bytes =
            _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        // SAFETY: out.qs holds at least batch * cols quants (checked by the caller).
        unsafe { _mm256_storeu_si256(out.qs.as_mut_ptr().add(b * QK) as *mut __m256i, bytes) };
        out.d[b] = round_f16(d);
        out.s[b] = round_f16(d * sum as f32);
        out.sum[b] = sum;
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hmax8(v: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let m = _mm_max_ss(m, _mm_movehdup_ps(m));
    _mm_cvtss_f32(m)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

/// [`super::vector::hsum8`] on a register: `((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7))`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_ps(v: __m256) -> f32 {
    let q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let h = _mm_add_ps(q, _mm_movehl_ps(q, q));
    let s = _mm_add_ss(h, _mm_movehdup_ps(h));
    _mm_cvtss_f32(s)
}

// ------------------------------------------------------------------ matmul

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn matmul(w: &WeightMatrix, acts: &ActBuf, rows: Range<usize>, out: &mut [f32], wide: Wide) {
    match w.ty {
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 => {
            // SAFETY: forwarded precondition (AVX2+FMA+F16C); shapes validated by Kernels::matmul.
            unsafe { matmul_quant(w, acts, rows, out, wide) }
        }
        GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::IQ4_NL | GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => {
            // SAFETY: forwarded precondition (AVX2+FMA+F16C, and `wide`'s); shapes validated by Kernels::matmul.
            unsafe { matmul_quant(w, acts, rows, out, wide) }
        }
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
            let n = rows.len();
            for r in rows.clone() {
                let row = w.row(r);
                for t in 0..acts.batch {
                    // SAFETY: row holds cols elements of w.ty; acts.f(t) holds cols floats.
                    out[t * n + (r - rows.start)] = unsafe { dot_row_f(w.ty, row.as_ptr(), acts.f(t)) };
                }
            }
        }
        _ => unreachable!("validated weight type"),
    }
}

/// The weight-type-specific part of a group kernel.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quant {
    Q4_0,
    Q4_1,
    Q8_0,
    /// The types of [`super::avx2_kquants`].
    More(GgmlType),
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn matmul_quant(w: &WeightMatrix, acts: &ActBuf, rows: Range<usize>, out: &mut [f32], wide: Wide) {
    let quant = match w.ty {
        GgmlType::Q4_0 => Quant::Q4_0,
        GgmlType::Q4_1 => Quant::Q4_1,
        GgmlType::Q8_0 => Quant::Q8_0,
        ty => Quant::More(ty),
    };
    let n = rows.len();
    let rb = w.row_bytes();
    let base = w.data.as_ptr();
    let mut start = rows.start;
    while start < rows.end {
        let count = (rows.end - start).min(GROUP);
        // Rows of this group; unused lanes repeat the last row.
        let ptrs: [*const u8; GROUP] = core::array::from_fn(|i| {
            let r = start + i.min(count - 1);
            // SAFETY: r < w.rows and data holds rows * rb bytes (validated).
            unsafe { base.add(r * rb) }
        });
        // Prefill: the types with tile kernels decode each weight block once
        // for up to TILE tokens (the same per-token operations, so the same bits).
        let mut t = 0;
        if let Quant::More(ty) = quant {
            if acts.batch > 1 && super::avx2_kquants::has_tile(ty) {
                while t < acts.batch {
                    let nt = (acts.batch - t).min(super::avx2_kquants::TILE);
                    // SAFETY: as below; tokens t..t + nt exist.
                    let vs = unsafe { super::avx2_kquants::tile(ty, &ptrs, acts, t, nt) };
                    for (k, v) in vs.iter().take(nt).enumerate() {
                        let mut lanes = [0.0f32; GROUP];
                        // SAFETY: lanes has room for 8 floats.
                        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), *v) };
                        out[(t + k) * n + (start - rows.start)..][..count].copy_from_slice(&lanes[..count]);
                    }
                    t += nt;
                }
            }
        }
        for t in t..acts.batch {
            // SAFETY: each pointer addresses a full row of w.cols / 32 blocks;
            // the activation slices hold w.cols quants and cols/32 scales.
            let v = unsafe {
                match quant {
                    Quant::Q4_0 => group_q4_0(&ptrs, acts, t),
                    Quant::Q4_1 => group_q4_1(&ptrs, acts, t),
                    Quant::Q8_0 => group_q8_0(&ptrs, acts, t),
                    Quant::More(ty) => match wide {
                        Wide::No => super::avx2_kquants::group(ty, &ptrs, acts, t),
                        Wide::Avx512(_) => super::avx2_kquants::group(ty, &ptrs, acts, t),
                        Wide::Vnni(_) => super::avx2_kquants::group_vnni(ty, &ptrs, acts, t),
                    },
                }
            };
            let mut lanes = [0.0f32; GROUP];
            // SAFETY: lanes has room for 8 floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
            let dst = &mut out[t * n + (start - rows.start)..][..count];
            dst.copy_from_slice(&lanes[..count]);
        }
        start += count;
    }
}

/// Unpacks a Q4 block's 16 nibble bytes into 32 bytes `0..16`, ggml order
/// (low nibbles are elements 0..16, high nibbles 16..32).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn unpack_nibbles(p: *const u8) -> __m256i {
    // SAFETY: caller guarantees 16 readable bytes at p.
    let q = unsafe { _mm_loadu_si128(p as *const __m128i) };
    let both = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0f))
}

/// Reduces 8 vectors of 8 partial i32 sums to one vector of 8 totals
/// (lane i = sum of all lanes of v[i]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn reduce8(v: &[__m256i; 8]) -> __m256i {
    let h01 = _mm256_hadd_epi32(v[0], v[1]);
    let h23 = _mm256_hadd_epi32(v[2], v[3]);
    let h45 = _mm256_hadd_epi32(v[4], v[5]);
    let h67 = _mm256_hadd_epi32(v[6], v[7]);
    let a = _mm256_hadd_epi32(h01, h23); // [v0..v3 low halves | v0..v3 high halves]
    let b = _mm256_hadd_epi32(h45, h67);
    let lo = _mm256_inserti128_si256(a, _mm256_castsi256_si128(b), 1);
    let hi = _mm256_permute2x128_si256(a, b, 0x31);
    _mm256_add_epi32(lo, hi)
}

/// Prefetches ahead of block `b` of a group in ggml's layout. The group's 8
/// rows are consecutive in memory, so the group is one contiguous stream that
/// the 8 row pointers walk through in step: at block `b` the kernel has used
/// about `8 * b * block_bytes` of it.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn prefetch_rows(ptrs: &[*const u8; GROUP], b: usize, block_bytes: usize) {
    prefetch_ahead(
        ptrs[0].wrapping_add(GROUP * b * block_bytes),
        (GROUP * block_bytes).div_ceil(64),
    );
}

/// The 8 rows' f16 values at byte offset `off` of their block `b`, as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn gather_f16(ptrs: &[*const u8; GROUP], at: usize) -> __m256 {
    // SAFETY: caller guarantees 2 readable bytes at ptrs[i] + at.
    let h: [i16; GROUP] = core::array::from_fn(|i| unsafe { (ptrs[i].add(at) as *const i16).read_unaligned() });
    _mm256_cvtph_ps(_mm_setr_epi16(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_q4_0(ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
    const BB: usize = BlockQ4_0::BYTES;
    let (qs, d, sum) = (acts.qs(t), acts.d(t), acts.sum(t));
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    for b in 0..d.len() {
        // SAFETY: qs holds 32 quants per block.
        let a = unsafe { _mm256_loadu_si256(qs.as_ptr().add(b * QK) as *const __m256i) };
        prefetch_rows(ptrs, b, BB);
        let v: [__m256i; GROUP] = core::array::from_fn(|i| {
            // SAFETY: block b of each row lies inside the row.
            let q = unsafe { unpack_nibbles(ptrs[i].add(b * BB + BlockQ4_0::QS_AT)) };
            _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), ones)
        });
        // sum((q - 8) * a) = sum(q * a) - 8 * sum(a), exactly.
        let isum = _mm256_sub_epi32(reduce8(&v), _mm256_set1_epi32(8 * sum[b]));
        // SAFETY: the scale is the block's first two bytes.
        let dw = unsafe { gather_f16(ptrs, b * BB) };
        let scale = _mm256_mul_ps(dw, _mm256_set1_ps(d[b]));
        acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum), acc);
    }
    acc
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_q4_1(ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
    const BB: usize = BlockQ4_1::BYTES;
    let (qs, d, s) = (acts.qs(t), acts.d(t), acts.s(t));
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    let mut macc = _mm256_setzero_ps();
    for b in 0..d.len() {
        // SAFETY: qs holds 32 quants per block.
        let a = unsafe { _mm256_loadu_si256(qs.as_ptr().add(b * QK) as *const __m256i) };
        prefetch_rows(ptrs, b, BB);
        let v: [__m256i; GROUP] = core::array::from_fn(|i| {
            // SAFETY: block b of each row lies inside the row.
            let q = unsafe { unpack_nibbles(ptrs[i].add(b * BB + BlockQ4_1::QS_AT)) };
            _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), ones)
        });
        let isum = reduce8(&v);
        // SAFETY: d and m are the block's first four bytes.
        let (dw, mw) = unsafe { (gather_f16(ptrs, b * BB), gather_f16(ptrs, b * BB + 2)) };
        let scale = _mm256_mul_ps(dw, _mm256_set1_ps(d[b]));
        acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum), acc);
        macc = _mm256_fmadd_ps(mw, _mm256_set1_ps(s[b]), macc);
    }
    _mm256_add_ps(acc, macc)
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_q8_0(ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
    const BB: usize = BlockQ8_0::BYTES;
    let (qs, d) = (acts.qs(t), acts.d(t));
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    for (b, &da) in d.iter().enumerate() {
        // SAFETY: qs holds 32 quants per block.
        let a = unsafe { _mm256_loadu_si256(qs.as_ptr().add(b * QK) as *const __m256i) };
        prefetch_rows(ptrs, b, BB);
        let v: [__m256i; GROUP] = core::array::from_fn(|i| {
            // SAFETY: block b of each row lies inside the row.
            let q = unsafe { _mm256_loadu_si256(ptrs[i].add(b * BB + BlockQ8_0::QS_AT) as *const __m256i) };
            // |w| * (a signed by w): exact for w = -128 too, since |a| <= 127.
            let p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q));
            _mm256_madd_epi16(p, ones)
        });
        let isum = reduce8(&v);
        // SAFETY: the scale is the block's first two bytes.
        let dw = unsafe { gather_f16(ptrs, b * BB) };
        let scale = _mm256_mul_ps(dw, _mm256_set1_ps(da));
        acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum), acc);
    }
    acc
}

/// One F32, F16 or BF16 row against float activations, in [`super::vector::dot_f32`]'s order.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_row_f(ty: GgmlType, row: *const u8, b: &[f32]) -> f32 {
    let load = |i: usize| -> __m256 {
        // SAFETY: i + 8 <= cols, and the row holds cols elements.
        unsafe {
            if ty == GgmlType::F16 {
                _mm256_cvtph_ps(_mm_loadu_si128(row.add(2 * i) as *const __m128i))
            } else if ty == GgmlType::BF16 {
                let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(row.add(2 * i) as *const __m128i));
                _mm256_castsi256_ps(_mm256_slli_epi32(h, 16))
            } else {
                _mm256_loadu_ps(row.add(4 * i) as *const f32)
            }
        }
    };
    let scalar = |i: usize| -> f32 {
        // SAFETY: i < cols.
        unsafe {
            if ty == GgmlType::F16 {
                crate::quant::f16_to_f32((row.add(2 * i) as *const u16).read_unaligned())
            } else if ty == GgmlType::BF16 {
                crate::quant::kquants::bf16_to_f32((row.add(2 * i) as *const u16).read_unaligned())
            } else {
                (row.add(4 * i) as *const f32).read_unaligned()
            }
        }
    };
    // SAFETY: forwarded from the caller.
    unsafe { dot_with(b.len(), load, scalar, b) }
}

/// The shared body of the float dot products.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_with(n: usize, load: impl Fn(usize) -> __m256, scalar: impl Fn(usize) -> f32, b: &[f32]) -> f32 {
    let bp = b.as_ptr();
    let lb = |i: usize| {
        // SAFETY: every call below loads 8 floats at i with i + 8 <= n = b.len().
        unsafe { _mm256_loadu_ps(bp.add(i)) }
    };
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (k, a) in acc.iter_mut().enumerate() {
            *a = _mm256_fmadd_ps(load(i + 8 * k), lb(i + 8 * k), *a);
        }
        i += 32;
    }
    let mut v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    while i + 8 <= n {
        v = _mm256_fmadd_ps(load(i), lb(i), v);
        i += 8;
    }
    let mut s = hsum_ps(v);
    while i < n {
        s = libm::fmaf(scalar(i), b[i], s);
        i += 1;
    }
    s
}

// ------------------------------------------------------------ vector helpers

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let ap = a.as_ptr();
    // SAFETY: dot_with only asks for indices below a.len() == b.len().
    unsafe { dot_with(a.len(), |i| _mm256_loadu_ps(ap.add(i)), |i| a[i], b) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let av = _mm256_set1_ps(a);
    let n = y.len();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n = y.len() = x.len().
        unsafe {
            let yp = y.as_mut_ptr().add(i);
            _mm256_storeu_ps(
                yp,
                _mm256_fmadd_ps(av, _mm256_loadu_ps(x.as_ptr().add(i)), _mm256_loadu_ps(yp)),
            );
        }
        i += 8;
    }
    for j in i..n {
        y[j] = libm::fmaf(a, x[j], y[j]);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale(y: &mut [f32], a: f32) {
    let av = _mm256_set1_ps(a);
    let mut chunks = y.chunks_exact_mut(8);
    for c in &mut chunks {
        // SAFETY: c has 8 floats.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), _mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), av)) };
    }
    for v in chunks.into_remainder() {
        *v *= a;
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn add(y: &mut [f32], x: &[f32]) {
    // SAFETY: forwarded precondition.
    unsafe { zip_with(y, x, |a, b| _mm256_add_ps(a, b), |a, b| a + b) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mul(y: &mut [f32], x: &[f32]) {
    // SAFETY: forwarded precondition.
    unsafe { zip_with(y, x, |a, b| _mm256_mul_ps(a, b), |a, b| a * b) }
}

/// `y[i] = op(y[i], x[i])`, 8 lanes at a time, the tail with `scalar`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn zip_with(y: &mut [f32], x: &[f32], op: impl Fn(__m256, __m256) -> __m256, scalar: impl Fn(f32, f32) -> f32) {
    let mut yc = y.chunks_exact_mut(8);
    let mut xc = x.chunks_exact(8);
    for (c, d) in (&mut yc).zip(&mut xc) {
        // SAFETY: both chunks have 8 floats.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), op(_mm256_loadu_ps(c.as_ptr()), _mm256_loadu_ps(d.as_ptr()))) };
    }
    for (v, &u) in yc.into_remainder().iter_mut().zip(xc.remainder()) {
        *v = scalar(*v, u);
    }
}

/// Prefetches `lines` cache lines starting `PREFETCH_DIST` bytes past `p`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn prefetch_ahead(p: *const u8, lines: usize) {
    let d = PREFETCH_DIST.load(core::sync::atomic::Ordering::Relaxed);
    for l in 0..lines {
        // A prefetch never faults, even past the end of the matrix.
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(d + 64 * l) as *const i8);
    }
}
