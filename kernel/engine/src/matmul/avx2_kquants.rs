//! AVX2 group kernels for Q5_0, Q5_1, IQ4_NL and the K-quants on ggml's
//! layout, in the scheme of [`super::avx2`]: 8 output rows per group, one
//! exact integer sum per row and activation block of 32 (`reduce8`), then the
//! scalar reference's float sequence per lane ([`super::scalar`]'s
//! `small_dot` / `super_dot`). The K-quants' per-16 sub-block scales are
//! applied in the integer domain (`vpmaddwd` with a vector holding the two
//! sub-blocks' scales), so every block still yields one exact integer per row;
//! the K-quants add those integers over the super-block and take one float
//! step per super-block with the Q8_K activation scale.
//! The AVX-512 paths run these kernels too (ggml layout); on the VNNI path
//! the types with unsigned quants (Q5_0, Q5_1, Q4_K, Q5_K) use a 256-bit
//! `vpdpbusd` for their integer dot products ([`group_vnni`]), which is
//! exact too, so the bits are the same. (512-bit versions, two blocks per
//! vector, were measured slower on the Zen 4 development host: see
//! docs/performance.md.)

use core::arch::x86_64::*;

use super::avx2::{gather_f16, prefetch_rows, reduce8, unpack_nibbles, GROUP};
use super::ActBuf;
use crate::ggml_type::GgmlType;
use crate::quant::kquants::{at, scales_mins_k4, KVALUES_IQ4NL, Q5_0_QH_AT, Q5_1_QH_AT, QK_K};
use crate::quant::QK;

/// Blocks of 32 in a super-block.
const SUB: usize = QK_K / QK;

/// The group kernel for `ty`: lane `i` is row `ptrs[i]`'s output for token `t`.
///
/// # Safety
/// AVX2+FMA+F16C; each pointer addresses a full row of `acts.cols()`
/// elements of `ty`; `acts` was quantized for `ty`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn group(ty: GgmlType, ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
    // SAFETY: forwarded.
    unsafe {
        match ty {
            GgmlType::Q5_0 => group_q5::<false>(ptrs, acts, t),
            GgmlType::Q5_1 => group_q5::<true>(ptrs, acts, t),
            GgmlType::IQ4_NL => group_iq4_nl(ptrs, acts, t),
            GgmlType::Q4_K => group_q45_k::<false>(ptrs, acts, t),
            GgmlType::Q5_K => group_q45_k::<true>(ptrs, acts, t),
            GgmlType::Q6_K => group_q6_k(ptrs, acts, t),
            GgmlType::Q3_K => group_q3_k(ptrs, acts, t),
            GgmlType::Q2_K => group_q2_k(ptrs, acts, t),
            _ => unreachable!("validated weight type"),
        }
    }
}

/// 32 bytes, byte `j` = 0x10 if bit `j` of `bits` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bits_to_0x10(bits: u32) -> __m256i {
    // Byte j of 64-bit lane k is byte k of `bits`; OR with a mask that has
    // every bit but bit j set, and the byte is all ones iff bit j was set.
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(bits as i32),
        _mm256_setr_epi64x(0, 0x0101_0101_0101_0101, 0x0202_0202_0202_0202, 0x0303_0303_0303_0303),
    );
    let set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe)), _mm256_set1_epi64x(-1));
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// 32 bytes of `p >> shift` (per byte, `shift` < 8) masked with `mask`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_bits(p: *const u8, shift: u32, mask: i8) -> __m256i {
    // SAFETY: caller guarantees 32 readable bytes at p.
    let v = unsafe { _mm256_loadu_si256(p as *const __m256i) };
    _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(shift as i32)), _mm256_set1_epi8(mask))
}

/// Pairwise `q * a` of signed `q` (|q| <= 127) and activations `a`, as 16 i16.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn mul_signed(q: __m256i, a: __m256i) -> __m256i {
    _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q))
}

/// 16 i16 lanes: `lo` in the first 8 (elements 0..16), `hi` in the last 8.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scale_pair(lo: i32, hi: i32) -> __m256i {
    _mm256_set_m128i(_mm_set1_epi16(hi as i16), _mm_set1_epi16(lo as i16))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_acts(acts: &ActBuf, t: usize, b: usize) -> __m256i {
    // SAFETY: caller guarantees block b exists: qs holds 32 quants per block.
    unsafe { _mm256_loadu_si256(acts.qs(t).as_ptr().add(b * QK) as *const __m256i) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_q5<const MIN: bool>(ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
    // SAFETY: forwarded.
    unsafe { q5_from::<MIN>(ptrs, acts, t) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_iq4_nl(ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
    let bb = GgmlType::IQ4_NL.block_bytes();
    let d = acts.d(t);
    let ones = _mm256_set1_epi16(1);
    let table = iq4_nl_table();
    let mut acc = _mm256_setzero_ps();
    for (b, &da) in d.iter().enumerate() {
        // SAFETY: b < blocks.
        let a = unsafe { load_acts(acts, t, b) };
        prefetch_rows(ptrs, b, bb);
        let v: [__m256i; GROUP] = core::array::from_fn(|i| {
            // SAFETY: block b of each row lies inside the row; quants after d.
            let q = _mm256_shuffle_epi8(table, unsafe { unpack_nibbles(ptrs[i].add(b * bb + 2)) });
            _mm256_madd_epi16(mul_signed(q, a), ones)
        });
        let isum = reduce8(&v);
        // SAFETY: the scale is the block's first two bytes.
        let dw = unsafe { gather_f16(ptrs, b * bb) };
        acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(da)), _mm256_cvtepi32_ps(isum), acc);
    }
    acc
}

/// IQ4_NL's 16 levels in both 128-bit lanes (a `vpshufb` table).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn iq4_nl_table() -> __m256i {
    let k = KVALUES_IQ4NL;
    let half = _mm_setr_epi8(k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13], k[14], k[15]);
    _mm256_set_m128i(half, half)
}

/// The 8 rows' values of `f(row pointer)` as one vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn per_row(ptrs: &[*const u8; GROUP], f: impl Fn(*const u8) -> i32) -> __m256i {
    let v: [i32; GROUP] = core::array::from_fn(|i| f(ptrs[i]));
    _mm256_setr_epi32(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
}

/// The float step shared by the K-quants, for block `b` (see `super_dot`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k_step(acc: &mut __m256, dw: __m256, da: f32, isum: __m256i) {
    *acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(da)), _mm256_cvtepi32_ps(isum), *acc);
}

/// Generates the kernels whose quants are unsigned (Q5_0, Q5_1, Q4_K, Q5_K)
/// for one ISA: `$dot(q, a)` gives 8 i32 lanes summing to the block's
/// `sum(q * a)` (AVX2: `vpmaddubsw` + `vpmaddwd`; VNNI: one 256-bit `vpdpbusd`).
macro_rules! unsigned_kernels {
    ($feat:literal, $q5_from:ident, $q45_k:ident, $dot:ident) => {
#[target_feature(enable = $feat)]
unsafe fn $q5_from<const MIN: bool>(ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
    let bb = if MIN { GgmlType::Q5_1.block_bytes() } else { GgmlType::Q5_0.block_bytes() };
    let qh_at = if MIN { Q5_1_QH_AT } else { Q5_0_QH_AT };
    let (d, s, sum) = (acts.d(t), acts.s(t), acts.sum(t));
    let mut acc = _mm256_setzero_ps();
    let mut macc = _mm256_setzero_ps();
    for b in 0..d.len() {
        // SAFETY: b < blocks.
        let a = unsafe { load_acts(acts, t, b) };
        prefetch_rows(ptrs, b, bb);
        let v: [__m256i; GROUP] = core::array::from_fn(|i| {
            // SAFETY: block b of each row lies inside the row.
            let q = unsafe {
                let blk = ptrs[i].add(b * bb);
                let qh = (blk.add(qh_at) as *const u32).read_unaligned();
                _mm256_or_si256(unpack_nibbles(blk.add(qh_at + 4)), bits_to_0x10(qh))
            };
            $dot(q, a)
        });
        let mut isum = reduce8(&v);
        if !MIN {
            // sum((q - 16) * a) = sum(q * a) - 16 * sum(a), exactly.
            isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(16 * sum[b]));
        }
        // SAFETY: d (and m) are the block's first bytes.
        let dw = unsafe { gather_f16(ptrs, b * bb) };
        acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(d[b])), _mm256_cvtepi32_ps(isum), acc);
        if MIN {
            // SAFETY: as above.
            let mw = unsafe { gather_f16(ptrs, b * bb + 2) };
            macc = _mm256_fmadd_ps(mw, _mm256_set1_ps(s[b]), macc);
        }
    }
    if MIN {
        _mm256_add_ps(acc, macc)
    } else {
        acc
    }
}

#[target_feature(enable = $feat)]
unsafe fn $q45_k<const FIVE: bool>(ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
    let bb = if FIVE { GgmlType::Q5_K.block_bytes() } else { GgmlType::Q4_K.block_bytes() };
    let qs_at = if FIVE { at::Q5_K_QS } else { at::Q4_K_QS };
    let (dk, bs) = (acts.dk(t), acts.bsums(t));
    let mut acc = _mm256_setzero_ps();
    let mut macc = _mm256_setzero_ps();
    for sb in 0..dk.len() {
        prefetch_rows(ptrs, sb, bb);
        let base: [*const u8; GROUP] = core::array::from_fn(|i| ptrs[i].wrapping_add(sb * bb));
        // SAFETY: super-block sb of each row lies inside the row: d, dmin first.
        let (dw, dmin) = unsafe { (gather_f16(&base, 0), gather_f16(&base, 2)) };
        // The 8 rows' scales and minimums, transposed: `sc_t[j]` holds the 8
        // rows' scale of sub-block j (bytes), `m_t[j]` their minimums.
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
        let (mut isum_sb, mut msum_sb) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        for j in 0..SUB {
            let b = sb * SUB + j;
            // SAFETY: b < blocks.
            let a = unsafe { load_acts(acts, t, b) };
            let v: [__m256i; GROUP] = core::array::from_fn(|i| {
                // SAFETY: the quants (and qh) lie inside the super-block.
                let q = unsafe {
                    let low = load_bits(base[i].add(qs_at + 32 * (j / 2)), 4 * (j as u32 & 1), 0x0f);
                    if FIVE {
                        let high = load_bits(base[i].add(at::Q5_K_QH), j as u32, 1);
                        _mm256_or_si256(low, _mm256_slli_epi16(high, 4))
                    } else {
                        low
                    }
                };
                $dot(q, a)
            });
            // SAFETY: 8 bytes each.
            let (sc, m) = unsafe { (bytes8_to_i32(sc_t[j].as_ptr()), bytes8_to_i32(m_t[j].as_ptr())) };
            let isum = _mm256_mullo_epi32(reduce8(&v), sc);
            let msum = _mm256_mullo_epi32(m, _mm256_set1_epi32(bs[16 * sb + 2 * j] + bs[16 * sb + 2 * j + 1]));
            isum_sb = _mm256_add_epi32(isum_sb, isum);
            msum_sb = _mm256_add_epi32(msum_sb, msum);
        }
        k_step(&mut acc, dw, dk[sb], isum_sb);
        k_step(&mut macc, dmin, dk[sb], msum_sb);
    }
    _mm256_sub_ps(acc, macc)
}

    };
}

unsigned_kernels!("avx2,fma,f16c", q5_from, group_q45_k, dot_u8);
unsigned_kernels!("avx2,fma,f16c,avx512vl,avx512vnni", q5_from_vnni, group_q45_k_vnni, dot_u8_vnni);

/// `sum(q * a)` of unsigned `q` (< 128) and signed `a`, in 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_u8(q: __m256i, a: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), _mm256_set1_epi16(1))
}

/// The same sums with one 256-bit `vpdpbusd` (AVX-512 VL + VNNI).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512vl,avx512vnni")]
fn dot_u8_vnni(q: __m256i, a: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, a)
}

/// [`group`] on the AVX-512 VNNI path: the unsigned-quant types with
/// `vpdpbusd`, the others as on AVX2 (same bits either way).
///
/// # Safety
/// As [`group`], and the CPU has AVX-512 VL and VNNI.
#[target_feature(enable = "avx2,fma,f16c,avx512vl,avx512vnni")]
pub(super) unsafe fn group_vnni(ty: GgmlType, ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
    // SAFETY: forwarded.
    unsafe {
        match ty {
            GgmlType::Q5_0 => q5_from_vnni::<false>(ptrs, acts, t),
            GgmlType::Q5_1 => q5_from_vnni::<true>(ptrs, acts, t),
            GgmlType::Q4_K => group_q45_k_vnni::<false>(ptrs, acts, t),
            GgmlType::Q5_K => group_q45_k_vnni::<true>(ptrs, acts, t),
            _ => group(ty, ptrs, acts, t),
        }
    }
}

/// 8 unsigned bytes at `p` as 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bytes8_to_i32(p: *const u8) -> __m256i {
    // SAFETY: caller guarantees 8 readable bytes.
    _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(p as *const __m128i) })
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_q6_k(ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
    let bb = GgmlType::Q6_K.block_bytes();
    let dk = acts.dk(t);
    let mut acc = _mm256_setzero_ps();
    for (sb, &dks) in dk.iter().enumerate() {
        prefetch_rows(ptrs, sb, bb);
        let base: [*const u8; GROUP] = core::array::from_fn(|i| ptrs[i].wrapping_add(sb * bb));
        // SAFETY: d lies inside the super-block.
        let dw = unsafe { gather_f16(&base, at::Q6_K_D) };
        // SAFETY: the 16 i8 scales lie inside the super-block.
        let scales: [[__m256i; 2]; GROUP] = core::array::from_fn(|i| unsafe {
            let p = base[i].add(at::Q6_K_SCALES) as *const __m128i;
            let v = _mm_loadu_si128(p);
            [doubled(_mm256_cvtepi8_epi32(v)), doubled(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)))]
        });
        let mut isum_sb = _mm256_setzero_si256();
        for j in 0..SUB {
            let b = sb * SUB + j;
            let (n, k) = (j / 4, j % 4);
            // SAFETY: b < blocks.
            let a = unsafe { load_acts(acts, t, b) };
            let v: [__m256i; GROUP] = core::array::from_fn(|i| {
                // SAFETY: ql and qh lie inside the super-block.
                let q = unsafe {
                    let low = load_bits(base[i].add(64 * n + 32 * (k & 1)), 4 * (k as u32 >> 1), 0x0f);
                    let high = load_bits(base[i].add(at::Q6_K_QH + 32 * n), 2 * k as u32, 3);
                    _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(high, 4)), _mm256_set1_epi8(32))
                };
                _mm256_madd_epi16(mul_signed(q, a), pair(scales[i][n], k))
            });
            isum_sb = _mm256_add_epi32(isum_sb, reduce8(&v));
        }
        k_step(&mut acc, dw, dks, isum_sb);
    }
    acc
}

/// Each i32 lane `s` (a scale in i16 range) as the i16 pair `(s, s)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn doubled(v: __m256i) -> __m256i {
    _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(v, 16))
}

/// From 8 doubled scales (`doubled`), the i16 vector of sub-blocks `2k` (first
/// 8 lanes: elements 0..16 of a block) and `2k + 1` (last 8), k in 0..4.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pair(doubled: __m256i, k: usize) -> __m256i {
    let (lo, hi) = (2 * k as i32, 2 * k as i32 + 1);
    _mm256_permutevar8x32_epi32(doubled, _mm256_setr_epi32(lo, lo, lo, lo, hi, hi, hi, hi))
}

/// The 8 rows' Q3_K sub-block scales (`q3_k_scale - 32`) as two `doubled`
/// vectors each (sub-blocks 0..8, 8..16), decoded with vector shifts. A plain
/// loop over the rows, not an `array::from_fn` closure: the compiler kept
/// that closure out of line, a call per row and super-block.
///
/// # Safety
/// Each `base[i]` addresses a Q3_K super-block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q3_k_scales(base: &[*const u8; GROUP]) -> [[__m256i; 2]; GROUP] {
    let mut out = [[_mm256_setzero_si256(); 2]; GROUP];
    for (o, p) in out.iter_mut().zip(base) {
        // SAFETY: the 12 scale bytes lie inside the super-block.
        let (low8, high4) = unsafe {
            let s = p.add(at::Q3_K_SCALES);
            (_mm_loadl_epi64(s as *const __m128i), (s.add(8) as *const u32).read_unaligned())
        };
        // Scale k = 4g + i: nibble g / 2 of byte 4 (g % 2) + i, and bits
        // 2g..2g + 2 of byte 8 + i as bits 4..6 (see `q3_k_scale`).
        let nib = _mm_set1_epi8(0x0f);
        let low = _mm_unpacklo_epi64(_mm_and_si128(low8, nib), _mm_and_si128(_mm_srli_epi16::<4>(low8), nib));
        let high = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(high4 as i32), _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
        let sc = _mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi16::<4>(high)), _mm_set1_epi8(32));
        *o = [doubled(_mm256_cvtepi8_epi32(sc)), doubled(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(sc)))];
    }
    out
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_q3_k(ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
    let bb = GgmlType::Q3_K.block_bytes();
    let dk = acts.dk(t);
    let mut acc = _mm256_setzero_ps();
    for (sb, &dks) in dk.iter().enumerate() {
        prefetch_rows(ptrs, sb, bb);
        let base: [*const u8; GROUP] = core::array::from_fn(|i| ptrs[i].wrapping_add(sb * bb));
        // SAFETY: d lies inside the super-block.
        let dw = unsafe { gather_f16(&base, at::Q3_K_D) };
        // SAFETY: the 12 scale bytes lie inside each row's super-block.
        let scales = unsafe { q3_k_scales(&base) };
        let mut isum_sb = _mm256_setzero_si256();
        for j in 0..SUB {
            let b = sb * SUB + j;
            let (n, jj) = (j / 4, j % 4);
            // SAFETY: b < blocks.
            let a = unsafe { load_acts(acts, t, b) };
            let v: [__m256i; GROUP] = core::array::from_fn(|i| {
                // SAFETY: qs and hmask lie inside the super-block.
                let q = unsafe {
                    let low = load_bits(base[i].add(at::Q3_K_QS + 32 * n), 2 * jj as u32, 3);
                    let high = load_bits(base[i], (4 * n + jj) as u32, 1);
                    // low - 4 + 4 * high, in -4..4.
                    _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(high, 2)), _mm256_set1_epi8(4))
                };
                _mm256_madd_epi16(mul_signed(q, a), pair(scales[i][n], jj))
            });
            isum_sb = _mm256_add_epi32(isum_sb, reduce8(&v));
        }
        k_step(&mut acc, dw, dks, isum_sb);
    }
    acc
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_q2_k(ptrs: &[*const u8; GROUP], acts: &ActBuf, t: usize) -> __m256 {
    let bb = GgmlType::Q2_K.block_bytes();
    let (dk, bs) = (acts.dk(t), acts.bsums(t));
    let mut acc = _mm256_setzero_ps();
    let mut macc = _mm256_setzero_ps();
    for sb in 0..dk.len() {
        prefetch_rows(ptrs, sb, bb);
        let base: [*const u8; GROUP] = core::array::from_fn(|i| ptrs[i].wrapping_add(sb * bb));
        // SAFETY: d and dmin lie inside the super-block.
        let (dw, dmin) = unsafe { (gather_f16(&base, at::Q2_K_D), gather_f16(&base, at::Q2_K_D + 2)) };
        let (mut isum_sb, mut msum_sb) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        for j in 0..SUB {
            let b = sb * SUB + j;
            let (n, jj) = (j / 4, j % 4);
            // SAFETY: b < blocks.
            let a = unsafe { load_acts(acts, t, b) };
            // The activation sums of the block's two halves (Q8_K's bsums).
            let (a_lo, a_hi) = (bs[16 * sb + 2 * j], bs[16 * sb + 2 * j + 1]);
            let k0 = 8 * n + 2 * jj;
            let v: [__m256i; GROUP] = core::array::from_fn(|i| {
                // SAFETY: the scales and quants lie inside the super-block.
                unsafe {
                    let q = load_bits(base[i].add(at::Q2_K_QS + 32 * n), 2 * jj as u32, 3);
                    let (s0, s1) = (*base[i].add(k0), *base[i].add(k0 + 1));
                    _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), scale_pair((s0 & 15) as i32, (s1 & 15) as i32))
                }
            });
            // SAFETY: the scale bytes lie inside the super-block.
            let m_lo = per_row(&base, |p| unsafe { (*p.add(k0) >> 4) as i32 });
            // SAFETY: as above.
            let m_hi = per_row(&base, |p| unsafe { (*p.add(k0 + 1) >> 4) as i32 });
            let msum = _mm256_add_epi32(_mm256_mullo_epi32(m_lo, _mm256_set1_epi32(a_lo)), _mm256_mullo_epi32(m_hi, _mm256_set1_epi32(a_hi)));
            isum_sb = _mm256_add_epi32(isum_sb, reduce8(&v));
            msum_sb = _mm256_add_epi32(msum_sb, msum);
        }
        k_step(&mut acc, dw, dk[sb], isum_sb);
        k_step(&mut macc, dmin, dk[sb], msum_sb);
    }
    _mm256_sub_ps(acc, macc)
}

// ------------------------------------------------------- prefill tile kernels

/// Tokens per tile of the prefill kernels.
pub(super) const TILE: usize = 4;

/// Whether `ty` has a tile kernel ([`tile`]).
pub(super) fn has_tile(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::IQ4_NL | GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K)
}

/// Tokens `t0..t0 + nt` (`nt <= TILE`) of [`group`] at once: each weight
/// block is loaded and decoded once for all of them; every token's lane
/// goes through exactly [`group`]'s operations, so the bits are the same.
///
/// # Safety
/// As [`group`]; `ty` has a tile kernel and tokens `t0..t0 + nt` exist.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile(ty: GgmlType, ptrs: &[*const u8; GROUP], acts: &ActBuf, t0: usize, nt: usize) -> [__m256; TILE] {
    // SAFETY: forwarded.
    unsafe {
        match ty {
            GgmlType::Q5_0 => tile_q5::<false>(ptrs, acts, t0, nt),
            GgmlType::Q5_1 => tile_q5::<true>(ptrs, acts, t0, nt),
            GgmlType::Q4_K => tile_q45_k::<false>(ptrs, acts, t0, nt),
            GgmlType::Q5_K => tile_q45_k::<true>(ptrs, acts, t0, nt),
            GgmlType::Q6_K => tile_q6_k(ptrs, acts, t0, nt),
            GgmlType::IQ4_NL => tile_iq4_nl(ptrs, acts, t0, nt),
            GgmlType::Q3_K => tile_q3_k(ptrs, acts, t0, nt),
            GgmlType::Q2_K => tile_q2_k(ptrs, acts, t0, nt),
            _ => unreachable!("has_tile"),
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_q5<const MIN: bool>(ptrs: &[*const u8; GROUP], acts: &ActBuf, t0: usize, nt: usize) -> [__m256; TILE] {
    let bb = if MIN { GgmlType::Q5_1.block_bytes() } else { GgmlType::Q5_0.block_bytes() };
    let qh_at = if MIN { Q5_1_QH_AT } else { Q5_0_QH_AT };
    let nb = acts.d(t0).len();
    let mut acc = [_mm256_setzero_ps(); TILE];
    let mut macc = [_mm256_setzero_ps(); TILE];
    for b in 0..nb {
        prefetch_rows(ptrs, b, bb);
        let q: [__m256i; GROUP] = core::array::from_fn(|i| {
            // SAFETY: block b of each row lies inside the row.
            unsafe {
                let blk = ptrs[i].add(b * bb);
                let qh = (blk.add(qh_at) as *const u32).read_unaligned();
                _mm256_or_si256(unpack_nibbles(blk.add(qh_at + 4)), bits_to_0x10(qh))
            }
        });
        // SAFETY: d (and m) are the block's first bytes.
        let (dw, mw) = unsafe { (gather_f16(ptrs, b * bb), if MIN { gather_f16(ptrs, b * bb + 2) } else { _mm256_setzero_ps() }) };
        for k in 0..nt {
            let t = t0 + k;
            // SAFETY: b < blocks.
            let a = unsafe { load_acts(acts, t, b) };
            let v: [__m256i; GROUP] = core::array::from_fn(|i| dot_u8(q[i], a));
            let mut isum = reduce8(&v);
            if !MIN {
                isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(16 * acts.sum(t)[b]));
            }
            acc[k] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(acts.d(t)[b])), _mm256_cvtepi32_ps(isum), acc[k]);
            if MIN {
                macc[k] = _mm256_fmadd_ps(mw, _mm256_set1_ps(acts.s(t)[b]), macc[k]);
            }
        }
    }
    if MIN {
        core::array::from_fn(|k| _mm256_add_ps(acc[k], macc[k]))
    } else {
        acc
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_q45_k<const FIVE: bool>(ptrs: &[*const u8; GROUP], acts: &ActBuf, t0: usize, nt: usize) -> [__m256; TILE] {
    let bb = if FIVE { GgmlType::Q5_K.block_bytes() } else { GgmlType::Q4_K.block_bytes() };
    let qs_at = if FIVE { at::Q5_K_QS } else { at::Q4_K_QS };
    let nsb = acts.dk(t0).len();
    let mut acc = [_mm256_setzero_ps(); TILE];
    let mut macc = [_mm256_setzero_ps(); TILE];
    for sb in 0..nsb {
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
        let mut isum_sb = [_mm256_setzero_si256(); TILE];
        let mut msum_sb = [_mm256_setzero_si256(); TILE];
        for j in 0..SUB {
            let b = sb * SUB + j;
            let q: [__m256i; GROUP] = core::array::from_fn(|i| {
                // SAFETY: the quants (and qh) lie inside the super-block.
                unsafe {
                    let low = load_bits(base[i].add(qs_at + 32 * (j / 2)), 4 * (j as u32 & 1), 0x0f);
                    if FIVE {
                        let high = load_bits(base[i].add(at::Q5_K_QH), j as u32, 1);
                        _mm256_or_si256(low, _mm256_slli_epi16(high, 4))
                    } else {
                        low
                    }
                }
            });
            // SAFETY: 8 bytes each.
            let (sc, m) = unsafe { (bytes8_to_i32(sc_t[j].as_ptr()), bytes8_to_i32(m_t[j].as_ptr())) };
            for k in 0..nt {
                let t = t0 + k;
                // SAFETY: b < blocks.
                let a = unsafe { load_acts(acts, t, b) };
                let v: [__m256i; GROUP] = core::array::from_fn(|i| dot_u8(q[i], a));
                let isum = _mm256_mullo_epi32(reduce8(&v), sc);
                let bs = acts.bsums(t);
                let msum = _mm256_mullo_epi32(m, _mm256_set1_epi32(bs[16 * sb + 2 * j] + bs[16 * sb + 2 * j + 1]));
                isum_sb[k] = _mm256_add_epi32(isum_sb[k], isum);
                msum_sb[k] = _mm256_add_epi32(msum_sb[k], msum);
            }
        }
        for k in 0..nt {
            let dk = acts.dk(t0 + k)[sb];
            k_step(&mut acc[k], dw, dk, isum_sb[k]);
            k_step(&mut macc[k], dmin, dk, msum_sb[k]);
        }
    }
    core::array::from_fn(|k| _mm256_sub_ps(acc[k], macc[k]))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_q6_k(ptrs: &[*const u8; GROUP], acts: &ActBuf, t0: usize, nt: usize) -> [__m256; TILE] {
    let bb = GgmlType::Q6_K.block_bytes();
    let nsb = acts.dk(t0).len();
    let mut acc = [_mm256_setzero_ps(); TILE];
    for sb in 0..nsb {
        prefetch_rows(ptrs, sb, bb);
        let base: [*const u8; GROUP] = core::array::from_fn(|i| ptrs[i].wrapping_add(sb * bb));
        // SAFETY: d lies inside the super-block.
        let dw = unsafe { gather_f16(&base, at::Q6_K_D) };
        // SAFETY: the 16 i8 scales lie inside the super-block.
        let scales: [[__m256i; 2]; GROUP] = core::array::from_fn(|i| unsafe {
            let v = _mm_loadu_si128(base[i].add(at::Q6_K_SCALES) as *const __m128i);
            [doubled(_mm256_cvtepi8_epi32(v)), doubled(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)))]
        });
        let mut isum_sb = [_mm256_setzero_si256(); TILE];
        for j in 0..SUB {
            let b = sb * SUB + j;
            let (n, kk) = (j / 4, j % 4);
            let q: [__m256i; GROUP] = core::array::from_fn(|i| {
                // SAFETY: ql and qh lie inside the super-block.
                unsafe {
                    let low = load_bits(base[i].add(64 * n + 32 * (kk & 1)), 4 * (kk as u32 >> 1), 0x0f);
                    let high = load_bits(base[i].add(at::Q6_K_QH + 32 * n), 2 * kk as u32, 3);
                    _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(high, 4)), _mm256_set1_epi8(32))
                }
            });
            let sc: [__m256i; GROUP] = core::array::from_fn(|i| pair(scales[i][n], kk));
            for (k, isum) in isum_sb.iter_mut().enumerate().take(nt) {
                let t = t0 + k;
                // SAFETY: b < blocks.
                let a = unsafe { load_acts(acts, t, b) };
                let v: [__m256i; GROUP] = core::array::from_fn(|i| _mm256_madd_epi16(mul_signed(q[i], a), sc[i]));
                *isum = _mm256_add_epi32(*isum, reduce8(&v));
            }
        }
        for (k, acc) in acc.iter_mut().enumerate().take(nt) {
            k_step(acc, dw, acts.dk(t0 + k)[sb], isum_sb[k]);
        }
    }
    acc
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_iq4_nl(ptrs: &[*const u8; GROUP], acts: &ActBuf, t0: usize, nt: usize) -> [__m256; TILE] {
    let bb = GgmlType::IQ4_NL.block_bytes();
    let nb = acts.d(t0).len();
    let ones = _mm256_set1_epi16(1);
    let table = iq4_nl_table();
    let mut acc = [_mm256_setzero_ps(); TILE];
    for b in 0..nb {
        prefetch_rows(ptrs, b, bb);
        // SAFETY: block b of each row lies inside the row; quants after d.
        let q: [__m256i; GROUP] = core::array::from_fn(|i| _mm256_shuffle_epi8(table, unsafe { unpack_nibbles(ptrs[i].add(b * bb + 2)) }));
        // SAFETY: the scale is the block's first two bytes.
        let dw = unsafe { gather_f16(ptrs, b * bb) };
        for (k, acc) in acc.iter_mut().enumerate().take(nt) {
            let t = t0 + k;
            // SAFETY: b < blocks.
            let a = unsafe { load_acts(acts, t, b) };
            let v: [__m256i; GROUP] = core::array::from_fn(|i| _mm256_madd_epi16(mul_signed(q[i], a), ones));
            *acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(acts.d(t)[b])), _mm256_cvtepi32_ps(reduce8(&v)), *acc);
        }
    }
    acc
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_q3_k(ptrs: &[*const u8; GROUP], acts: &ActBuf, t0: usize, nt: usize) -> [__m256; TILE] {
    let bb = GgmlType::Q3_K.block_bytes();
    let nsb = acts.dk(t0).len();
    let mut acc = [_mm256_setzero_ps(); TILE];
    for sb in 0..nsb {
        prefetch_rows(ptrs, sb, bb);
        let base: [*const u8; GROUP] = core::array::from_fn(|i| ptrs[i].wrapping_add(sb * bb));
        // SAFETY: d lies inside the super-block.
        let dw = unsafe { gather_f16(&base, at::Q3_K_D) };
        // SAFETY: the 12 scale bytes lie inside each row's super-block.
        let scales = unsafe { q3_k_scales(&base) };
        let mut isum_sb = [_mm256_setzero_si256(); TILE];
        for j in 0..SUB {
            let b = sb * SUB + j;
            let (n, jj) = (j / 4, j % 4);
            let q: [__m256i; GROUP] = core::array::from_fn(|i| {
                // SAFETY: qs and hmask lie inside the super-block.
                unsafe {
                    let low = load_bits(base[i].add(at::Q3_K_QS + 32 * n), 2 * jj as u32, 3);
                    let high = load_bits(base[i], (4 * n + jj) as u32, 1);
                    _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(high, 2)), _mm256_set1_epi8(4))
                }
            });
            let sc: [__m256i; GROUP] = core::array::from_fn(|i| pair(scales[i][n], jj));
            for (k, isum) in isum_sb.iter_mut().enumerate().take(nt) {
                let t = t0 + k;
                // SAFETY: b < blocks.
                let a = unsafe { load_acts(acts, t, b) };
                let v: [__m256i; GROUP] = core::array::from_fn(|i| _mm256_madd_epi16(mul_signed(q[i], a), sc[i]));
                *isum = _mm256_add_epi32(*isum, reduce8(&v));
            }
        }
        for (k, acc) in acc.iter_mut().enumerate().take(nt) {
            k_step(acc, dw, acts.dk(t0 + k)[sb], isum_sb[k]);
        }
    }
    acc
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_q2_k(ptrs: &[*const u8; GROUP], acts: &ActBuf, t0: usize, nt: usize) -> [__m256; TILE] {
    let bb = GgmlType::Q2_K.block_bytes();
    let nsb = acts.dk(t0).len();
    let mut acc = [_mm256_setzero_ps(); TILE];
    let mut macc = [_mm256_setzero_ps(); TILE];
    for sb in 0..nsb {
        prefetch_rows(ptrs, sb, bb);
        let base: [*const u8; GROUP] = core::array::from_fn(|i| ptrs[i].wrapping_add(sb * bb));
        // SAFETY: d and dmin lie inside the super-block.
        let (dw, dmin) = unsafe { (gather_f16(&base, at::Q2_K_D), gather_f16(&base, at::Q2_K_D + 2)) };
        let mut isum_sb = [_mm256_setzero_si256(); TILE];
        let mut msum_sb = [_mm256_setzero_si256(); TILE];
        for j in 0..SUB {
            let b = sb * SUB + j;
            let (n, jj) = (j / 4, j % 4);
            let k0 = 8 * n + 2 * jj;
            let q: [__m256i; GROUP] = core::array::from_fn(|i| {
                // SAFETY: the quants lie inside the super-block.
                unsafe { load_bits(base[i].add(at::Q2_K_QS + 32 * n), 2 * jj as u32, 3) }
            });
            let sc: [__m256i; GROUP] = core::array::from_fn(|i| {
                // SAFETY: the scale bytes lie inside the super-block.
                let (s0, s1) = unsafe { (*base[i].add(k0), *base[i].add(k0 + 1)) };
                scale_pair((s0 & 15) as i32, (s1 & 15) as i32)
            });
            // SAFETY: the scale bytes lie inside the super-block.
            let m_lo = per_row(&base, |p| unsafe { (*p.add(k0) >> 4) as i32 });
            // SAFETY: as above.
            let m_hi = per_row(&base, |p| unsafe { (*p.add(k0 + 1) >> 4) as i32 });
            for k in 0..nt {
                let t = t0 + k;
                // SAFETY: b < blocks.
                let a = unsafe { load_acts(acts, t, b) };
                let bs = acts.bsums(t);
                let (a_lo, a_hi) = (bs[16 * sb + 2 * j], bs[16 * sb + 2 * j + 1]);
                let v: [__m256i; GROUP] = core::array::from_fn(|i| _mm256_madd_epi16(_mm256_maddubs_epi16(q[i], a), sc[i]));
                let msum = _mm256_add_epi32(_mm256_mullo_epi32(m_lo, _mm256_set1_epi32(a_lo)), _mm256_mullo_epi32(m_hi, _mm256_set1_epi32(a_hi)));
                isum_sb[k] = _mm256_add_epi32(isum_sb[k], reduce8(&v));
                msum_sb[k] = _mm256_add_epi32(msum_sb[k], msum);
            }
        }
        for k in 0..nt {
            let dk = acts.dk(t0 + k)[sb];
            k_step(&mut acc[k], dw, dk, isum_sb[k]);
            k_step(&mut macc[k], dmin, dk, msum_sb[k]);
        }
    }
    core::array::from_fn(|k| _mm256_sub_ps(acc[k], macc[k]))
}
