//! AVX-512 kernels for the packed layout: two blocks per 512-bit vector.
//!
//! Each iteration loads block records `b` and `b + 1` of a group into the two
//! 256-bit halves of ZMM registers, so one `vpmaddubsw` (AVX-512 BW) or one
//! `vpdpbusd` (AVX-512 VNNI, which also removes the 16-bit intermediate and
//! the `vpmaddwd`) does the integer work of two blocks. The exact per-block
//! integer sums are then split back into 256-bit halves and go through the
//! very same float sequence as the AVX2 and scalar paths (block `b` first),
//! so every ISA still produces the same bits. Q5_0/Q5_1 records add their
//! fifth bits from the record's bit planes (two records' planes per ZMM);
//! IQ4_NL's single-token kernel is 256-bit (the AVX2 one on the BW path, a
//! `vpdpbusd` one on unsigned levels + 128 on the VNNI path).
//!
//! Prefill (batched) kernels: the VNNI path has its own 256-bit `vpdpbusd`
//! versions; the plain AVX-512 path uses the AVX2 batched kernels. Matrices
//! in ggml's layout run the AVX2 kernels on both AVX-512 paths.
//!
//! Where these kernels are verified (natively, or on an emulated CPU) is in
//! docs/engine.md, "How each ISA path is verified".

use core::arch::x86_64::*;

use super::avx2::prefetch_ahead;
use super::avx2_packed::{add_block, batch_avx2, bcast8, dot_q4, dot_q8, fifth_bits, iq4_nl_table_plus_128, nibble_type, packed_iq4_nl};
use super::packed::{Geometry, GROUP_ROWS, SCALE_VECTOR};
use super::packed_driver::{impl_group_kernels, Group, GroupKernels, TOKEN_TILE};
use super::ActBuf;
use crate::cpu::CpuFeatures;
use crate::ggml_type::GgmlType;
use crate::quant::QK;

/// Proof that this CPU runs the AVX-512 F/BW/VL path (the AVX2 set
/// included) with ZMM and opmask state enabled: made only by
/// [`Avx512::detect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Avx512(());

impl Avx512 {
    pub(super) fn detect() -> Option<Avx512> {
        CpuFeatures::detect().has_avx512_path().then_some(Avx512(()))
    }
}

/// Proof that this CPU runs the AVX-512 VNNI path (AVX-512 F/BW/VL, the AVX2
/// set and VNNI): made only by [`Avx512Vnni::detect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Avx512Vnni(());

impl Avx512Vnni {
    pub(super) fn detect() -> Option<Avx512Vnni> {
        CpuFeatures::detect().has_avx512_vnni_path().then_some(Avx512Vnni(()))
    }
}

// The plain AVX-512 path's batched kernel is the AVX2 one.
impl_group_kernels!(Avx512, "AVX-512 F/BW/VL and AVX2", single_avx512, batch_avx2);
impl_group_kernels!(Avx512Vnni, "AVX-512 F/BW/VL/VNNI and AVX2", single_vnni, batch_vnni);

/// Generates one ISA's single-token group kernels from its integer
/// dot-product helpers (`dot4*` on 512 bits, `dot1*` on 256 bits for an odd
/// last block; the `q4` forms may sum nibble products in 16 bits).
macro_rules! group_kernels {
    ($feat:literal, $single:ident, $q4:ident, $q8:ident, $iq4:ident, $dot4q4:ident, $dot1q4:ident, $dot4:ident, $dot1:ident) => {
        #[target_feature(enable = $feat)]
        unsafe fn $single(ty: GgmlType, grp: *const u8, acts: &ActBuf) -> [f32; GROUP_ROWS] {
            // SAFETY: forwarded (see the `GroupKernels` impls).
            let v = unsafe {
                match ty {
                    GgmlType::Q4_0 => $q4::<false, false>(grp, acts),
                    GgmlType::Q4_1 => $q4::<true, false>(grp, acts),
                    GgmlType::Q5_0 => $q4::<false, true>(grp, acts),
                    GgmlType::Q5_1 => $q4::<true, true>(grp, acts),
                    GgmlType::IQ4_NL => $iq4(grp, acts),
                    _ => $q8(grp, acts),
                }
            };
            let mut lanes = [0.0f32; GROUP_ROWS];
            // SAFETY: lanes has room for 8 floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
            lanes
        }

        /// Packed Q4_0 / Q4_1 / Q5_0 / Q5_1, token 0, two blocks per iteration.
        #[target_feature(enable = $feat)]
        unsafe fn $q4<const OFFSET: bool, const FIVE: bool>(grp: *const u8, acts: &ActBuf) -> __m256 {
            let (qs, d, s, sum) = (acts.qs(0), acts.d(0), acts.s(0), acts.sum(0));
            let nb = d.len();
            let (ty, geometry) = nibble_type(OFFSET, FIVE);
            let (rec_bytes, qs_at, half) = (geometry.record(), geometry.quants_at(), geometry.quant / 2);
            let mask = _mm512_set1_epi8(0x0f);
            let idx = [
                _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0),
                _mm512_set_epi64(5, 5, 5, 5, 1, 1, 1, 1),
                _mm512_set_epi64(6, 6, 6, 6, 2, 2, 2, 2),
                _mm512_set_epi64(7, 7, 7, 7, 3, 3, 3, 3),
            ];
            let mut acc = _mm256_setzero_ps();
            let mut macc = _mm256_setzero_ps();
            // The float tail of one block: exactly the AVX2 sequence.
            let mut finish = |b: usize, isum: __m256i, rec: *const u8| {
                // SAFETY: rec is block b's record.
                unsafe { add_block(ty, rec, isum, d[b], s[b], sum[b], &mut acc, &mut macc) }
            };
            let mut b = 0;
            while b + 2 <= nb {
                // SAFETY: records b and b+1 lie inside the group; blocks b and
                // b+1 of the activations are 64 consecutive quants.
                unsafe {
                    let r0 = grp.add(b * rec_bytes);
                    let r1 = r0.add(rec_bytes);
                    prefetch_ahead(r0, (2 * rec_bytes).div_ceil(64));
                    let av = _mm512_loadu_si512(qs.as_ptr().add(b * QK) as *const _);
                    let a: [__m512i; 4] = core::array::from_fn(|k| _mm512_permutexvar_epi64(idx[k], av));
                    // 32 bytes at `at` in each of the two records.
                    let ld = |at: usize| {
                        _mm512_inserti64x4::<1>(
                            _mm512_castsi256_si512(_mm256_loadu_si256(r0.add(at) as *const __m256i)),
                            _mm256_loadu_si256(r1.add(at) as *const __m256i),
                        )
                    };
                    let planes = if FIVE { ld(geometry.planes_at()) } else { mask };
                    // Nibble vector k (module doc of `packed`), with its fifth bits for Q5.
                    let quants = |v: __m512i, k: usize| {
                        let n = if k % 2 == 0 { _mm512_and_si512(v, mask) } else { _mm512_and_si512(_mm512_srli_epi16::<4>(v), mask) };
                        if FIVE {
                            _mm512_or_si512(n, fifth_bits_512(planes, k))
                        } else {
                            n
                        }
                    };
                    let set = |s: usize| {
                        let (v0, v1) = (ld(qs_at + s * half), ld(qs_at + s * half + 32));
                        let (l0, h0) = (quants(v0, 4 * s), quants(v0, 4 * s + 1));
                        let (l1, h1) = (quants(v1, 4 * s + 2), quants(v1, 4 * s + 3));
                        // Pairs (weights, activations): low nibbles of chunk c
                        // meet a[8c..], high nibbles a[16+8c..].
                        $dot4q4([(l0, a[0]), (h0, a[2]), (l1, a[1]), (h1, a[3])])
                    };
                    let (xa, xb) = (set(0), set(1));
                    let (lo, hi) = block_sums(xa, xb);
                    finish(b, lo, r0);
                    finish(b + 1, hi, r1);
                }
                b += 2;
            }
            if b < nb {
                // SAFETY: record b lies inside the group; block b of the
                // activations holds 32 quants.
                unsafe {
                    let r0 = grp.add(b * rec_bytes);
                    let a = qs.as_ptr().add(b * QK);
                    let (a0, a1, a2, a3) = (bcast8(a), bcast8(a.add(8)), bcast8(a.add(16)), bcast8(a.add(24)));
                    let m = _mm256_set1_epi8(0x0f);
                    let planes = if FIVE { _mm256_loadu_si256(r0.add(geometry.planes_at()) as *const __m256i) } else { m };
                    let quants = |v: __m256i, k: usize| {
                        let n = if k % 2 == 0 { _mm256_and_si256(v, m) } else { _mm256_and_si256(_mm256_srli_epi16::<4>(v), m) };
                        if FIVE {
                            _mm256_or_si256(n, fifth_bits(planes, k))
                        } else {
                            n
                        }
                    };
                    let set = |s: usize| {
                        let v0 = _mm256_loadu_si256(r0.add(qs_at + s * half) as *const __m256i);
                        let v1 = _mm256_loadu_si256(r0.add(qs_at + s * half + 32) as *const __m256i);
                        let (l0, h0) = (quants(v0, 4 * s), quants(v0, 4 * s + 1));
                        let (l1, h1) = (quants(v1, 4 * s + 2), quants(v1, 4 * s + 3));
                        $dot1q4([(l0, a0), (h0, a2), (l1, a1), (h1, a3)])
                    };
                    finish(b, _mm256_hadd_epi32(set(0), set(1)), r0);
                }
            }
            if OFFSET {
                _mm256_add_ps(acc, macc)
            } else {
                acc
            }
        }

        /// Packed Q8_0, token 0, two blocks per iteration.
        #[target_feature(enable = $feat)]
        unsafe fn $q8(grp: *const u8, acts: &ActBuf) -> __m256 {
            const G: Geometry = Geometry::Q8_0;
            const REC: usize = G.record();
            let (qs, d) = (acts.qs(0), acts.d(0));
            let nb = d.len();
            let idx = [
                _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0),
                _mm512_set_epi64(5, 5, 5, 5, 1, 1, 1, 1),
                _mm512_set_epi64(6, 6, 6, 6, 2, 2, 2, 2),
                _mm512_set_epi64(7, 7, 7, 7, 3, 3, 3, 3),
            ];
            let zero = _mm512_setzero_si512();
            let mut acc = _mm256_setzero_ps();
            let mut unused = _mm256_setzero_ps();
            let mut finish = |b: usize, isum: __m256i, rec: *const u8| {
                // SAFETY: rec is block b's record.
                unsafe { add_block(GgmlType::Q8_0, rec, isum, d[b], 0.0, 0, &mut acc, &mut unused) }
            };
            let mut b = 0;
            while b + 2 <= nb {
                // SAFETY: records b and b+1 lie inside the group; blocks b and
                // b+1 of the activations are 64 consecutive quants.
                unsafe {
                    let r0 = grp.add(b * REC);
                    let r1 = r0.add(REC);
                    prefetch_ahead(r0, (2 * REC).div_ceil(64));
                    let av = _mm512_loadu_si512(qs.as_ptr().add(b * QK) as *const _);
                    let a: [__m512i; 4] = core::array::from_fn(|k| _mm512_permutexvar_epi64(idx[k], av));
                    let set = |s: usize| {
                        let pairs: [(__m512i, __m512i); 4] = core::array::from_fn(|c| {
                            let at = G.quants_at() + 32 * (4 * s + c);
                            let w = _mm512_inserti64x4::<1>(
                                _mm512_castsi256_si512(_mm256_loadu_si256(r0.add(at) as *const __m256i)),
                                _mm256_loadu_si256(r1.add(at) as *const __m256i),
                            );
                            // |w| and a signed by w (a product with w = 0 is 0 anyway).
                            let neg = _mm512_movepi8_mask(w);
                            (_mm512_abs_epi8(w), _mm512_mask_sub_epi8(a[c], neg, zero, a[c]))
                        });
                        $dot4(pairs)
                    };
                    let (xa, xb) = (set(0), set(1));
                    let (lo, hi) = block_sums(xa, xb);
                    finish(b, lo, r0);
                    finish(b + 1, hi, r1);
                }
                b += 2;
            }
            if b < nb {
                // SAFETY: record b lies inside the group; block b of the
                // activations holds 32 quants.
                unsafe {
                    let r0 = grp.add(b * REC);
                    let a = qs.as_ptr().add(b * QK);
                    let av = [bcast8(a), bcast8(a.add(8)), bcast8(a.add(16)), bcast8(a.add(24))];
                    let set = |s: usize| {
                        let pairs: [(__m256i, __m256i); 4] = core::array::from_fn(|c| {
                            let w = _mm256_loadu_si256(r0.add(G.quants_at() + 32 * (4 * s + c)) as *const __m256i);
                            (_mm256_sign_epi8(w, w), _mm256_sign_epi8(av[c], w))
                        });
                        $dot1(pairs)
                    };
                    finish(b, _mm256_hadd_epi32(set(0), set(1)), r0);
                }
            }
            acc
        }
    };
}

/// Sets A and B of two blocks (block `b` in the low 256 bits, `b + 1` in the
/// high ones) to the two blocks' 8 per-row integer sums.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn block_sums(xa: __m512i, xb: __m512i) -> (__m256i, __m256i) {
    let lo = _mm256_hadd_epi32(_mm512_castsi512_si256(xa), _mm512_castsi512_si256(xb));
    let hi = _mm256_hadd_epi32(_mm512_extracti64x4_epi64::<1>(xa), _mm512_extracti64x4_epi64::<1>(xb));
    (lo, hi)
}

/// [`fifth_bits`] on two records' planes (block `b` low, `b + 1` high).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn fifth_bits_512(planes: __m512i, k: usize) -> __m512i {
    let v = match k {
        0 => _mm512_slli_epi16::<4>(planes),
        1 => _mm512_slli_epi16::<3>(planes),
        2 => _mm512_slli_epi16::<2>(planes),
        3 => _mm512_slli_epi16::<1>(planes),
        4 => planes,
        5 => _mm512_srli_epi16::<1>(planes),
        6 => _mm512_srli_epi16::<2>(planes),
        _ => _mm512_srli_epi16::<3>(planes),
    };
    _mm512_and_si512(v, _mm512_set1_epi8(0x10))
}

// ---------------------------------------------------------------- AVX-512 BW

/// Packed IQ4_NL, token 0: the AVX2 kernel (its signed levels need the
/// `vpsignb` pairs, and 512 bits did not pay for them).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn iq4_nl_avx512(grp: *const u8, acts: &ActBuf) -> __m256 {
    // SAFETY: forwarded (see the `GroupKernels` impls).
    unsafe { packed_iq4_nl(grp, acts, 0) }
}

/// Four byte dot products per 32-bit lane, one `vpmaddubsw` + `vpmaddwd` per
/// pair. Exact: a 16-bit lane holds two products of |w| <= 128 by |a| <= 127
/// (at most 32512) and is widened before any further addition.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn dot4_bw(pairs: [(__m512i, __m512i); 4]) -> __m512i {
    let ones = _mm512_set1_epi16(1);
    let mut x = _mm512_setzero_si512();
    for (w, a) in pairs {
        x = _mm512_add_epi32(x, _mm512_madd_epi16(_mm512_maddubs_epi16(w, a), ones));
    }
    x
}

/// [`dot4_bw`] for 4- and 5-bit weights (w <= 31): the four product vectors
/// are summed in 16 bits first (at most 8 * 31 * 128 = 31744) and widened once.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn dot4_bw_q4(pairs: [(__m512i, __m512i); 4]) -> __m512i {
    let p: [__m512i; 4] = core::array::from_fn(|k| _mm512_maddubs_epi16(pairs[k].0, pairs[k].1));
    let s = _mm512_add_epi16(_mm512_add_epi16(p[0], p[1]), _mm512_add_epi16(p[2], p[3]));
    _mm512_madd_epi16(s, _mm512_set1_epi16(1))
}

group_kernels!(
    "avx512f,avx512bw,avx512vl,avx2,fma,f16c",
    single_avx512,
    q4_avx512,
    q8_avx512,
    iq4_nl_avx512,
    dot4_bw_q4,
    dot_q4,
    dot4_bw,
    dot_q8
);

// --------------------------------------------------------------- AVX-512 VNNI

/// `vpdpbusd` chain: four u8 x i8 dot products per 32-bit lane, added without
/// any 16-bit intermediate (exact).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dot4_vnni(pairs: [(__m512i, __m512i); 4]) -> __m512i {
    let mut x = _mm512_setzero_si512();
    for (w, a) in pairs {
        x = _mm512_dpbusd_epi32(x, w, a);
    }
    x
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dot1_vnni(pairs: [(__m256i, __m256i); 4]) -> __m256i {
    let mut x = _mm256_setzero_si256();
    for (w, a) in pairs {
        x = _mm256_dpbusd_epi32(x, w, a);
    }
    x
}

/// Packed IQ4_NL, token 0, with `vpdpbusd`: the levels plus 128 (1..241) are
/// unsigned bytes, so they meet the activations directly, exactly (32-bit
/// sums, no saturation), and `128 · sum_a` is taken off the block's sum.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn iq4_nl_vnni(grp: *const u8, acts: &ActBuf) -> __m256 {
    const G: Geometry = Geometry::IQ4_NL;
    const REC: usize = G.record();
    let (qs, d, sum) = (acts.qs(0), acts.d(0), acts.sum(0));
    let (mask, table) = (_mm256_set1_epi8(0x0f), iq4_nl_table_plus_128());
    let (mut acc, mut unused) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for (b, &da) in d.iter().enumerate() {
        // SAFETY: block b's 32 quants; record b lies inside the group.
        unsafe {
            let rec = grp.add(b * REC);
            prefetch_ahead(rec, REC.div_ceil(64));
            let a = qs.as_ptr().add(b * QK);
            let (a0, a1, a2, a3) = (bcast8(a), bcast8(a.add(8)), bcast8(a.add(16)), bcast8(a.add(24)));
            let q = rec.add(G.quants_at());
            let set = |s: usize| -> __m256i {
                let v0 = _mm256_loadu_si256(q.add(s * G.quant / 2) as *const __m256i);
                let v1 = _mm256_loadu_si256(q.add(s * G.quant / 2 + 32) as *const __m256i);
                let level = |n: __m256i| _mm256_shuffle_epi8(table, _mm256_and_si256(n, mask));
                let x = _mm256_dpbusd_epi32(_mm256_setzero_si256(), level(v0), a0);
                let x = _mm256_dpbusd_epi32(x, level(_mm256_srli_epi16::<4>(v0)), a2);
                let x = _mm256_dpbusd_epi32(x, level(v1), a1);
                _mm256_dpbusd_epi32(x, level(_mm256_srli_epi16::<4>(v1)), a3)
            };
            let isum = _mm256_sub_epi32(_mm256_hadd_epi32(set(0), set(1)), _mm256_set1_epi32(128 * sum[b]));
            add_block(GgmlType::IQ4_NL, rec, isum, da, 0.0, 0, &mut acc, &mut unused);
        }
    }
    acc
}

group_kernels!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    single_vnni,
    q4_vnni,
    q8_vnni,
    iq4_nl_vnni,
    dot4_vnni,
    dot1_vnni,
    dot4_vnni,
    dot1_vnni
);

// Batched (prefill) packed kernel with 256-bit `vpdpbusd`: the AVX2 batched
// kernel's code with the integer part fused.
super::avx2_packed::batch_kernel!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    batch_vnni,
    dot1_vnni,
    dot1_vnni,
    true
);
