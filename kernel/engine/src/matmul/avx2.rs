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
//! All functions here are `unsafe` because they require AVX2, FMA and F16C;
//! callers guarantee that via [`super::Kernels`].

use core::arch::x86_64::*;
use core::ops::Range;

use super::packed::{PackedView, GROUP_ROWS};
use super::{ActBuf, WeightMatrix};
use crate::ggml_type::GgmlType;
use crate::quant::{round_f16, QK};

/// Output rows per group.
const GROUP: usize = 8;

use super::PREFETCH_DIST;

// ---------------------------------------------------------------- activations

/// Quantizes `x` into `out` exactly like `quantize_block_q8` (the scalar
/// reference), 32 floats at a time.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn quantize_q8(x: &[f32], out: &mut ActBuf) {
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
pub(super) unsafe fn matmul(w: &WeightMatrix, acts: &ActBuf, rows: Range<usize>, out: &mut [f32]) {
    match w.ty {
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 => {
            // SAFETY: forwarded precondition (AVX2+FMA+F16C); shapes validated by Kernels::matmul.
            unsafe { matmul_quant(w, acts, rows, out) }
        }
        GgmlType::F32 | GgmlType::F16 => {
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
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn matmul_quant(w: &WeightMatrix, acts: &ActBuf, rows: Range<usize>, out: &mut [f32]) {
    let quant = match w.ty {
        GgmlType::Q4_0 => Quant::Q4_0,
        GgmlType::Q4_1 => Quant::Q4_1,
        _ => Quant::Q8_0,
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
        for t in 0..acts.batch {
            // SAFETY: each pointer addresses a full row of w.cols / 32 blocks;
            // the activation slices hold w.cols quants and cols/32 scales.
            let v = unsafe {
                match quant {
                    Quant::Q4_0 => group_q4_0(&ptrs, acts, t),
                    Quant::Q4_1 => group_q4_1(&ptrs, acts, t),
                    Quant::Q8_0 => group_q8_0(&ptrs, acts, t),
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
unsafe fn unpack_nibbles(p: *const u8) -> __m256i {
    // SAFETY: caller guarantees 16 readable bytes at p.
    let q = unsafe { _mm_loadu_si128(p as *const __m128i) };
    let both = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0f))
}

/// Reduces 8 vectors of 8 partial i32 sums to one vector of 8 totals
/// (lane i = sum of all lanes of v[i]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn reduce8(v: &[__m256i; 8]) -> __m256i {
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
fn prefetch_rows(ptrs: &[*const u8; GROUP], b: usize, block_bytes: usize) {
    prefetch_ahead(
        ptrs[0].wrapping_add(GROUP * b * block_bytes),
        (GROUP * block_bytes).div_ceil(64),
    );
}

/// The 8 rows' f16 values at byte offset `off` of their block `b`, as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gather_f16(ptrs: &[*const u8; GROUP], at: usize) -> __m256 {
    // SAFETY: caller guarantees 2 readable bytes at ptrs[i] + at.
    let h: [i16; GROUP] = core::array::from_fn(|i| unsafe { (ptrs[i].add(at) as *const i16).read_unaligned() });
    _mm256_cvtph_ps(_mm_setr_epi16(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_q4_0(ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
    const BB: usize = 18;
    let (qs, d, sum) = (acts.qs(t), acts.d(t), acts.sum(t));
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    for b in 0..d.len() {
        // SAFETY: qs holds 32 quants per block.
        let a = unsafe { _mm256_loadu_si256(qs.as_ptr().add(b * QK) as *const __m256i) };
        prefetch_rows(ptrs, b, BB);
        let v: [__m256i; GROUP] = core::array::from_fn(|i| {
            // SAFETY: block b of each row lies inside the row.
            let q = unsafe { unpack_nibbles(ptrs[i].add(b * BB + 2)) };
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
    const BB: usize = 20;
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
            let q = unsafe { unpack_nibbles(ptrs[i].add(b * BB + 4)) };
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
    const BB: usize = 34;
    let (qs, d) = (acts.qs(t), acts.d(t));
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    for (b, &da) in d.iter().enumerate() {
        // SAFETY: qs holds 32 quants per block.
        let a = unsafe { _mm256_loadu_si256(qs.as_ptr().add(b * QK) as *const __m256i) };
        prefetch_rows(ptrs, b, BB);
        let v: [__m256i; GROUP] = core::array::from_fn(|i| {
            // SAFETY: block b of each row lies inside the row.
            let q = unsafe { _mm256_loadu_si256(ptrs[i].add(b * BB + 2) as *const __m256i) };
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

/// One F32 or F16 row against float activations, in [`super::vector::dot_f32`]'s order.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_row_f(ty: GgmlType, row: *const u8, b: &[f32]) -> f32 {
    let load = |i: usize| -> __m256 {
        // SAFETY: i + 8 <= cols, and the row holds cols elements.
        unsafe {
            if ty == GgmlType::F16 {
                _mm256_cvtph_ps(_mm_loadu_si128(row.add(2 * i) as *const __m128i))
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
    // SAFETY (all loads of b below): indices stay below n = b.len().
    let lb = |i: usize| unsafe { _mm256_loadu_ps(bp.add(i)) };
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
pub(super) unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let ap = a.as_ptr();
    // SAFETY: dot_with only asks for indices below a.len() == b.len().
    unsafe { dot_with(a.len(), |i| _mm256_loadu_ps(ap.add(i)), |i| a[i], b) }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
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
pub(super) unsafe fn scale(y: &mut [f32], a: f32) {
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
pub(super) unsafe fn add(y: &mut [f32], x: &[f32]) {
    // SAFETY: forwarded precondition.
    unsafe { zip_with(y, x, |a, b| _mm256_add_ps(a, b), |a, b| a + b) }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn mul(y: &mut [f32], x: &[f32]) {
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

// ------------------------------------------------------------ packed layout

/// Matmul over a [`PackedView`] (see `packed.rs` for the layout). Rows of a
/// group outside `rows` are computed and discarded, so tiles aligned to
/// 8 rows waste nothing.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn matmul_packed(p: &PackedView, acts: &ActBuf, rows: Range<usize>, out: &mut [f32]) {
    // SAFETY: forwarded precondition (AVX2+FMA+F16C).
    unsafe { matmul_packed_with(&AVX2_GROUPS, p, acts, rows, out) }
}

/// The per-group kernels of one ISA for the packed layout.
pub(super) struct GroupKernels {
    /// Token 0 of `acts` against one group: the 8 rows' outputs.
    pub single: unsafe fn(GgmlType, *const u8, &ActBuf) -> [f32; GROUP_ROWS],
    /// Tokens `t0..t0 + out.len()` against one group.
    pub batch: unsafe fn(GgmlType, *const u8, &ActBuf, usize, &mut [[f32; GROUP_ROWS]]),
}

pub(super) const AVX2_GROUPS: GroupKernels = GroupKernels {
    single: single_avx2,
    batch: batch_avx2,
};

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn single_avx2(ty: GgmlType, grp: *const u8, acts: &ActBuf) -> [f32; GROUP_ROWS] {
    // SAFETY: forwarded (see GroupKernels).
    let v = unsafe {
        match ty {
            GgmlType::Q4_0 => packed_q4::<false>(grp, acts, 0),
            GgmlType::Q4_1 => packed_q4::<true>(grp, acts, 0),
            _ => packed_q8_0(grp, acts, 0),
        }
    };
    let mut lanes = [0.0f32; GROUP_ROWS];
    // SAFETY: lanes has room for 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
    lanes
}

/// The packed-layout driver shared by every SIMD ISA: walks the groups that
/// cover `rows`, calls the ISA's group kernels, keeps the requested rows.
///
/// # Safety
/// The CPU must support the ISA of `kernels`; `p` and `acts` must have been
/// checked against each other (done by `Kernels::matmul`).
pub(super) unsafe fn matmul_packed_with(
    kernels: &GroupKernels,
    p: &PackedView,
    acts: &ActBuf,
    rows: Range<usize>,
    out: &mut [f32],
) {
    let n = rows.len();
    let mut r = rows.start;
    while r < rows.end {
        let g = r / GROUP_ROWS;
        let first = g * GROUP_ROWS;
        let end = (first + GROUP_ROWS).min(rows.end);
        let grp = p.group(g).as_ptr();
        let mut store = |t: usize, v: &[f32; GROUP_ROWS]| {
            out[t * n + (r - rows.start)..][..end - r].copy_from_slice(&v[r - first..end - first]);
        };
        if acts.batch == 1 {
            // SAFETY: grp addresses a whole group of p's geometry; the
            // activation slices hold cols quants and cols/32 scales.
            store(0, &unsafe { (kernels.single)(p.ty(), grp, acts) });
        } else {
            let mut t0 = 0;
            while t0 < acts.batch {
                let nt = (acts.batch - t0).min(TOKEN_TILE);
                let mut acc = [[0.0f32; GROUP_ROWS]; TOKEN_TILE];
                // SAFETY: as above, for tokens t0..t0 + nt of acts.
                unsafe { (kernels.batch)(p.ty(), grp, acts, t0, &mut acc[..nt]) };
                for (i, a) in acc[..nt].iter().enumerate() {
                    store(t0 + i, a);
                }
                t0 += nt;
            }
        }
        r = end;
    }
}

/// Tokens a batched packed kernel carries through one pass over a group.
pub(super) const TOKEN_TILE: usize = 16;

/// Broadcasts 8 activation quants to the four 64-bit lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn bcast8(p: *const i8) -> __m256i {
    // SAFETY: caller guarantees 8 readable bytes.
    _mm256_set1_epi64x(unsafe { (p as *const i64).read_unaligned() })
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

/// One group of a packed Q4_0 (`OFFSET = false`) or Q4_1 (`OFFSET = true`) matrix.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn packed_q4<const OFFSET: bool>(grp: *const u8, acts: &ActBuf, t: usize) -> __m256 {
    let (qs, d, s, sum) = (acts.qs(t), acts.d(t), acts.s(t), acts.sum(t));
    let nb = d.len();
    let rec_bytes = if OFFSET { 160 } else { 144 };
    let qs_at = rec_bytes - 128;
    let mask = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    let mut macc = _mm256_setzero_ps();
    for b in 0..nb {
        // SAFETY: block b's 32 quants; record b lies inside the group.
        unsafe {
            let rec = grp.add(b * rec_bytes);
            prefetch_ahead(rec, 3);
            let a = qs.as_ptr().add(b * QK);
            let (a0, a1, a2, a3) = (bcast8(a), bcast8(a.add(8)), bcast8(a.add(16)), bcast8(a.add(24)));
            let q = rec.add(qs_at);
            let set = |at: usize| -> __m256i {
                let v0 = _mm256_loadu_si256(q.add(at) as *const __m256i);
                let v1 = _mm256_loadu_si256(q.add(at + 32) as *const __m256i);
                let p0 = _mm256_maddubs_epi16(_mm256_and_si256(v0, mask), a0);
                let p1 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v0, 4), mask), a2);
                let p2 = _mm256_maddubs_epi16(_mm256_and_si256(v1, mask), a1);
                let p3 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v1, 4), mask), a3);
                // Each i16 lane sums 8 products of at most 15 * 128: no overflow.
                let p = _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3));
                _mm256_madd_epi16(p, ones)
            };
            let mut isum = _mm256_hadd_epi32(set(0), set(64));
            if !OFFSET {
                isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * sum[b]));
            }
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(rec as *const __m128i));
            let scale = _mm256_mul_ps(dw, _mm256_set1_ps(d[b]));
            acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum), acc);
            if OFFSET {
                let mw = _mm256_cvtph_ps(_mm_loadu_si128(rec.add(16) as *const __m128i));
                macc = _mm256_fmadd_ps(mw, _mm256_set1_ps(s[b]), macc);
            }
        }
    }
    if OFFSET {
        _mm256_add_ps(acc, macc)
    } else {
        acc
    }
}

/// One group of a packed Q8_0 matrix.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn packed_q8_0(grp: *const u8, acts: &ActBuf, t: usize) -> __m256 {
    const REC: usize = 272;
    let (qs, d) = (acts.qs(t), acts.d(t));
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    for (b, &da) in d.iter().enumerate() {
        // SAFETY: block b's 32 quants; record b lies inside the group.
        unsafe {
            let rec = grp.add(b * REC);
            prefetch_ahead(rec, 5);
            let a = qs.as_ptr().add(b * QK);
            let av = [bcast8(a), bcast8(a.add(8)), bcast8(a.add(16)), bcast8(a.add(24))];
            let q = rec.add(16);
            let set = |at: usize| -> __m256i {
                let mut x = _mm256_setzero_si256();
                for (c, &ac) in av.iter().enumerate() {
                    let v = _mm256_loadu_si256(q.add(at + 32 * c) as *const __m256i);
                    let p = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(ac, v));
                    x = _mm256_add_epi32(x, _mm256_madd_epi16(p, ones));
                }
                x
            };
            let isum = _mm256_hadd_epi32(set(0), set(128));
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(rec as *const __m128i));
            let scale = _mm256_mul_ps(dw, _mm256_set1_ps(da));
            acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum), acc);
        }
    }
    acc
}

/// Generates a batched (prefill) packed kernel: for each block record, the
/// weights are loaded and unpacked once (Q4 nibbles; Q8_0 absolute values)
/// and used for every token of the tile. Per token and lane the operations and
/// their order are exactly those of the single-token kernels, so batched and
/// single-token results are identical. `$dot_q4` / `$dot_q8` compute four
/// u8 x i8 byte dot products per 32-bit lane from four (weights, activations)
/// vector pairs; the ISA's choice of instructions lives there.
macro_rules! batch_kernel {
    ($feat:literal, $name:ident, $dot_q4:ident, $dot_q8:ident) => {
        #[target_feature(enable = $feat)]
        pub(super) unsafe fn $name(
            ty: GgmlType,
            grp: *const u8,
            acts: &ActBuf,
            t0: usize,
            out: &mut [[f32; GROUP_ROWS]],
        ) {
            // One specialised body per type (KIND: 0 = Q4_0, 1 = Q4_1, 2 = Q8_0).
            #[target_feature(enable = $feat)]
            unsafe fn body<const KIND: u8>(grp: *const u8, acts: &ActBuf, t0: usize, out: &mut [[f32; GROUP_ROWS]]) {
                let nb = acts.blocks();
                let nt = out.len();
                let q8 = KIND == 2;
                let offset = KIND == 1;
                let rec_bytes = [144, 160, 272][KIND as usize];
                let mask = _mm256_set1_epi8(0x0f);
                let mut accv = [_mm256_setzero_ps(); TOKEN_TILE];
                let mut maccv = [_mm256_setzero_ps(); TOKEN_TILE];
                for b in 0..nb {
                    // SAFETY: record b lies inside the group; every token's block
                    // b holds 32 quants.
                    unsafe {
                        let rec = grp.add(b * rec_bytes);
                        prefetch_ahead(rec, rec_bytes.div_ceil(64));
                        let dw = _mm256_cvtph_ps(_mm_loadu_si128(rec as *const __m128i));
                        let mw = if offset {
                            _mm256_cvtph_ps(_mm_loadu_si128(rec.add(16) as *const __m128i))
                        } else {
                            dw
                        };
                        // Eight weight vectors per set pair. Q4: [A lo c0, A hi c0,
                        // A lo c1, A hi c1, B ...] meeting activation chunks
                        // [0, 2, 1, 3]; Q8_0: [A c0..c3, B c0..c3] as |w|, with the
                        // raw w kept for the signs.
                        let q = rec.add(rec_bytes - if q8 { 256 } else { 128 });
                        let raw: [__m256i; 8] = core::array::from_fn(|k| {
                            if q8 {
                                _mm256_loadu_si256(q.add(32 * k) as *const __m256i)
                            } else {
                                _mm256_loadu_si256(q.add(32 * (k / 2)) as *const __m256i)
                            }
                        });
                        let w: [__m256i; 8] = core::array::from_fn(|k| {
                            if q8 {
                                _mm256_sign_epi8(raw[k], raw[k])
                            } else if k % 2 == 0 {
                                _mm256_and_si256(raw[k], mask)
                            } else {
                                _mm256_and_si256(_mm256_srli_epi16::<4>(raw[k]), mask)
                            }
                        });
                        let chunk: [usize; 4] = if q8 { [0, 1, 2, 3] } else { [0, 2, 1, 3] };
                        for i in 0..nt {
                            let t = t0 + i;
                            let a = acts.qs(t).as_ptr().add(b * QK);
                            let av = [bcast8(a), bcast8(a.add(8)), bcast8(a.add(16)), bcast8(a.add(24))];
                            let set = |s: usize| {
                                let pairs: [(__m256i, __m256i); 4] = core::array::from_fn(|k| {
                                    let a = av[chunk[k]];
                                    (
                                        w[4 * s + k],
                                        if q8 {
                                            _mm256_sign_epi8(a, raw[4 * s + k])
                                        } else {
                                            a
                                        },
                                    )
                                });
                                if q8 {
                                    $dot_q8(pairs)
                                } else {
                                    $dot_q4(pairs)
                                }
                            };
                            let mut isum = _mm256_hadd_epi32(set(0), set(1));
                            if KIND == 0 {
                                isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * acts.sum(t)[b]));
                            }
                            let scale = _mm256_mul_ps(dw, _mm256_set1_ps(acts.d(t)[b]));
                            accv[i] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum), accv[i]);
                            if offset {
                                maccv[i] = _mm256_fmadd_ps(mw, _mm256_set1_ps(acts.s(t)[b]), maccv[i]);
                            }
                        }
                    }
                }
                for (i, o) in out.iter_mut().enumerate() {
                    let v = if offset {
                        _mm256_add_ps(accv[i], maccv[i])
                    } else {
                        accv[i]
                    };
                    // SAFETY: o has room for 8 floats.
                    unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) };
                }
            }
            // SAFETY: forwarded (see GroupKernels).
            unsafe {
                match ty {
                    GgmlType::Q4_0 => body::<0>(grp, acts, t0, out),
                    GgmlType::Q4_1 => body::<1>(grp, acts, t0, out),
                    _ => body::<2>(grp, acts, t0, out),
                }
            }
        }
    };
}
pub(super) use batch_kernel;

/// Four u8 x i8 byte dot products per 32-bit lane for nibble weights: the
/// four `vpmaddubsw` results are summed in 16 bits (at most 8 * 15 * 128 =
/// 15360) and widened once.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q4(p: [(__m256i, __m256i); 4]) -> __m256i {
    let m: [__m256i; 4] = core::array::from_fn(|k| _mm256_maddubs_epi16(p[k].0, p[k].1));
    let s = _mm256_add_epi16(_mm256_add_epi16(m[0], m[1]), _mm256_add_epi16(m[2], m[3]));
    _mm256_madd_epi16(s, _mm256_set1_epi16(1))
}

/// The same for 8-bit weights (|w| <= 128): each `vpmaddubsw` result (at
/// most 2 * 128 * 127) is widened before it is added.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q8(p: [(__m256i, __m256i); 4]) -> __m256i {
    let ones = _mm256_set1_epi16(1);
    let mut x = _mm256_setzero_si256();
    for (w, a) in p {
        x = _mm256_add_epi32(x, _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), ones));
    }
    x
}

batch_kernel!("avx2,fma,f16c", batch_avx2, dot_q4, dot_q8);
