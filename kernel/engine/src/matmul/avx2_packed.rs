//! AVX2 kernels for the packed (row-interleaved) layout: one group of 8 rows
//! per call (see [`super::packed`] for the layout and
//! [`super::packed_driver`] for the driver). Every activation load and every
//! scale conversion is shared by the group's 8 rows, and nibble (and Q5's
//! 5-bit) products are summed in 16 bits before widening. The batched
//! (prefill) kernel is a macro so the AVX-512 VNNI path can instantiate it
//! with its own integer dot products.

use core::arch::x86_64::*;

use super::avx2::{prefetch_ahead, Avx2};
use super::avx2_kquants::iq4_nl_table;
use super::packed::{Geometry, GROUP_ROWS, SCALE_VECTOR};
use super::packed_driver::{impl_group_kernels, Group, GroupKernels, TOKEN_TILE};
use super::ActBuf;
use crate::ggml_type::GgmlType;
use crate::quant::QK;

impl_group_kernels!(Avx2, "AVX2+FMA+F16C", single_avx2, batch_avx2);

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn single_avx2(ty: GgmlType, grp: *const u8, acts: &ActBuf) -> [f32; GROUP_ROWS] {
    // SAFETY: forwarded (see `GroupKernels for Avx2`).
    let v = unsafe {
        match ty {
            GgmlType::Q4_0 => packed_q4::<false, false>(grp, acts, 0),
            GgmlType::Q4_1 => packed_q4::<true, false>(grp, acts, 0),
            GgmlType::Q5_0 => packed_q4::<false, true>(grp, acts, 0),
            GgmlType::Q5_1 => packed_q4::<true, true>(grp, acts, 0),
            GgmlType::IQ4_NL => packed_iq4_nl(grp, acts, 0),
            _ => packed_q8_0(grp, acts, 0),
        }
    };
    let mut lanes = [0.0f32; GROUP_ROWS];
    // SAFETY: lanes has room for 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
    lanes
}

/// Broadcasts 8 activation quants to the four 64-bit lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn bcast8(p: *const i8) -> __m256i {
    // SAFETY: caller guarantees 8 readable bytes.
    _mm256_set1_epi64x(unsafe { (p as *const i64).read_unaligned() })
}

/// Vector `k`'s fifth bits (`0x10` in each byte whose bit is set) from a
/// Q5 record's bit planes (see [`super::packed`]): bit `k` moved to bit 4.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn fifth_bits(planes: __m256i, k: usize) -> __m256i {
    let v = match k {
        0 => _mm256_slli_epi16::<4>(planes),
        1 => _mm256_slli_epi16::<3>(planes),
        2 => _mm256_slli_epi16::<2>(planes),
        3 => _mm256_slli_epi16::<1>(planes),
        4 => planes,
        5 => _mm256_srli_epi16::<1>(planes),
        6 => _mm256_srli_epi16::<2>(planes),
        _ => _mm256_srli_epi16::<3>(planes),
    };
    _mm256_and_si256(v, _mm256_set1_epi8(0x10))
}

/// Adds one block to a group's accumulators: the float sequence every ISA's
/// single-token packed kernels share, so they all give the same bits. For
/// Q4_0 `isum -= 8 · sum_a` (the nibbles are stored plus 8), for Q5_0
/// `isum -= 16 · sum_a`; then `acc = fma(dw · da, isum, acc)` with the 8
/// rows' scales `dw`, and for Q4_1 and Q5_1 also `macc = fma(mw, sa, macc)`
/// with their minimums `mw`.
///
/// # Safety
/// `rec` points to a record of a packed `ty` group.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn add_block(ty: GgmlType, rec: *const u8, isum: __m256i, da: f32, sa: f32, sum_a: i32, acc: &mut __m256, macc: &mut __m256) {
    let isum = match ty {
        GgmlType::Q4_0 => _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * sum_a)),
        GgmlType::Q5_0 => _mm256_sub_epi32(isum, _mm256_set1_epi32(16 * sum_a)),
        _ => isum,
    };
    // SAFETY: a record starts with its scale vector (the caller's contract).
    let dw = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(rec as *const __m128i) });
    *acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(da)), _mm256_cvtepi32_ps(isum), *acc);
    if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
        // SAFETY: a Q4_1 / Q5_1 record's second vector holds the minimums.
        let mw = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(rec.add(SCALE_VECTOR) as *const __m128i) });
        *macc = _mm256_fmadd_ps(mw, _mm256_set1_ps(sa), *macc);
    }
}

/// The type and geometry of the nibble types: Q4_0, Q4_1 (`offset`: with
/// minimums), Q5_0, Q5_1 (`five`: with fifth-bit planes).
pub(super) const fn nibble_type(offset: bool, five: bool) -> (GgmlType, Geometry) {
    match (offset, five) {
        (false, false) => (GgmlType::Q4_0, Geometry::Q4_0),
        (true, false) => (GgmlType::Q4_1, Geometry::Q4_1),
        (false, true) => (GgmlType::Q5_0, Geometry::Q5_0),
        (true, true) => (GgmlType::Q5_1, Geometry::Q5_1),
    }
}

/// One group of a packed Q4_0, Q4_1, Q5_0 or Q5_1 matrix (see [`nibble_type`]).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn packed_q4<const OFFSET: bool, const FIVE: bool>(grp: *const u8, acts: &ActBuf, t: usize) -> __m256 {
    let (qs, d, s, sum) = (acts.qs(t), acts.d(t), acts.s(t), acts.sum(t));
    let nb = d.len();
    let (ty, geometry) = nibble_type(OFFSET, FIVE);
    let (rec_bytes, qs_at, half) = (geometry.record(), geometry.quants_at(), geometry.quant / 2);
    let mask = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    let mut macc = _mm256_setzero_ps();
    for b in 0..nb {
        // SAFETY: block b's 32 quants; record b lies inside the group.
        unsafe {
            let rec = grp.add(b * rec_bytes);
            prefetch_ahead(rec, rec_bytes.div_ceil(64));
            let a = qs.as_ptr().add(b * QK);
            let (a0, a1, a2, a3) = (bcast8(a), bcast8(a.add(8)), bcast8(a.add(16)), bcast8(a.add(24)));
            let q = rec.add(qs_at);
            let planes = if FIVE { _mm256_loadu_si256(rec.add(geometry.planes_at()) as *const __m256i) } else { mask };
            // Nibble vector k (module doc of `packed`), with its fifth bits for Q5.
            let quants = |v: __m256i, k: usize| {
                let n = if k.is_multiple_of(2) { _mm256_and_si256(v, mask) } else { _mm256_and_si256(_mm256_srli_epi16(v, 4), mask) };
                if FIVE {
                    _mm256_or_si256(n, fifth_bits(planes, k))
                } else {
                    n
                }
            };
            let set = |s: usize| -> __m256i {
                let v0 = _mm256_loadu_si256(q.add(s * half) as *const __m256i);
                let v1 = _mm256_loadu_si256(q.add(s * half + 32) as *const __m256i);
                let p0 = _mm256_maddubs_epi16(quants(v0, 4 * s), a0);
                let p1 = _mm256_maddubs_epi16(quants(v0, 4 * s + 1), a2);
                let p2 = _mm256_maddubs_epi16(quants(v1, 4 * s + 2), a1);
                let p3 = _mm256_maddubs_epi16(quants(v1, 4 * s + 3), a3);
                // Each i16 lane sums 8 products of at most 31 * 128: no overflow.
                let p = _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3));
                _mm256_madd_epi16(p, ones)
            };
            let isum = _mm256_hadd_epi32(set(0), set(1));
            add_block(ty, rec, isum, d[b], s[b], sum[b], &mut acc, &mut macc);
        }
    }
    if OFFSET {
        _mm256_add_ps(acc, macc)
    } else {
        acc
    }
}

/// One group of a packed IQ4_NL matrix: the nibbles index the level table
/// (`vpshufb`), and the signed levels multiply as Q8_0's quants do.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn packed_iq4_nl(grp: *const u8, acts: &ActBuf, t: usize) -> __m256 {
    const G: Geometry = Geometry::IQ4_NL;
    const REC: usize = G.record();
    let (qs, d) = (acts.qs(t), acts.d(t));
    let (mask, table) = (_mm256_set1_epi8(0x0f), iq4_nl_table());
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
                let level = |n: __m256i| _mm256_shuffle_epi8(table, n);
                let w = [
                    level(_mm256_and_si256(v0, mask)),
                    level(_mm256_and_si256(_mm256_srli_epi16(v0, 4), mask)),
                    level(_mm256_and_si256(v1, mask)),
                    level(_mm256_and_si256(_mm256_srli_epi16(v1, 4), mask)),
                ];
                let av = [a0, a2, a1, a3];
                dot_q8(core::array::from_fn(|k| (_mm256_sign_epi8(w[k], w[k]), _mm256_sign_epi8(av[k], w[k]))))
            };
            let isum = _mm256_hadd_epi32(set(0), set(1));
            add_block(GgmlType::IQ4_NL, rec, isum, da, 0.0, 0, &mut acc, &mut unused);
        }
    }
    acc
}

/// IQ4_NL's levels plus 128 as unsigned bytes (1..241), a `vpshufb` table
/// for the `vpdpbusd` kernels: `k + 128` is `k ^ 0x80` in two's complement.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn iq4_nl_table_plus_128() -> __m256i {
    _mm256_xor_si256(iq4_nl_table(), _mm256_set1_epi8(-128))
}

/// One group of a packed Q8_0 matrix.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn packed_q8_0(grp: *const u8, acts: &ActBuf, t: usize) -> __m256 {
    const G: Geometry = Geometry::Q8_0;
    const REC: usize = G.record();
    let (qs, d) = (acts.qs(t), acts.d(t));
    let ones = _mm256_set1_epi16(1);
    let (mut acc, mut unused) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for (b, &da) in d.iter().enumerate() {
        // SAFETY: block b's 32 quants; record b lies inside the group.
        unsafe {
            let rec = grp.add(b * REC);
            prefetch_ahead(rec, REC.div_ceil(64));
            let a = qs.as_ptr().add(b * QK);
            let av = [bcast8(a), bcast8(a.add(8)), bcast8(a.add(16)), bcast8(a.add(24))];
            let q = rec.add(G.quants_at());
            let set = |at: usize| -> __m256i {
                let mut x = _mm256_setzero_si256();
                for (c, &ac) in av.iter().enumerate() {
                    let v = _mm256_loadu_si256(q.add(at + 32 * c) as *const __m256i);
                    let p = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(ac, v));
                    x = _mm256_add_epi32(x, _mm256_madd_epi16(p, ones));
                }
                x
            };
            let isum = _mm256_hadd_epi32(set(0), set(G.quant / 2));
            add_block(GgmlType::Q8_0, rec, isum, da, 0.0, 0, &mut acc, &mut unused);
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
/// `$iq4_unsigned` (true only where `$dot_q4` sums exactly in 32 bits, as
/// `vpdpbusd` does) runs IQ4_NL as unsigned levels + 128 through `$dot_q4`
/// instead of signed levels through `$dot_q8`; both give the same integers.
macro_rules! batch_kernel {
    ($feat:literal, $name:ident, $dot_q4:ident, $dot_q8:ident, $iq4_unsigned:literal) => {
        #[target_feature(enable = $feat)]
        pub(super) unsafe fn $name(
            ty: GgmlType,
            grp: *const u8,
            acts: &ActBuf,
            t0: usize,
            out: &mut [[f32; GROUP_ROWS]],
        ) {
            // One specialised body per type (KIND: 0 = Q4_0, 1 = Q4_1, 2 = Q8_0,
            // 3 = Q5_0, 4 = Q5_1, 5 = IQ4_NL).
            #[target_feature(enable = $feat)]
            unsafe fn body<const KIND: u8>(grp: *const u8, acts: &ActBuf, t0: usize, out: &mut [[f32; GROUP_ROWS]]) {
                let nb = acts.blocks();
                let nt = out.len();
                let q8 = KIND == 2;
                let offset = KIND == 1 || KIND == 4;
                let five = KIND == 3 || KIND == 4;
                let iq4 = KIND == 5;
                // With an exact 32-bit `$dot_q4` (VNNI), IQ4_NL's levels plus
                // 128 meet the activations as unsigned bytes, and `128 · sum_a`
                // is taken off; otherwise signed weights (Q8_0, IQ4_NL's
                // levels) multiply as |w| by a signed by w.
                let iq4_unsigned = iq4 && $iq4_unsigned;
                let signed = q8 || (iq4 && !iq4_unsigned);
                let geometry = [Geometry::Q4_0, Geometry::Q4_1, Geometry::Q8_0, Geometry::Q5_0, Geometry::Q5_1, Geometry::IQ4_NL][KIND as usize];
                let table = if iq4_unsigned {
                    super::avx2_packed::iq4_nl_table_plus_128()
                } else {
                    super::avx2_kquants::iq4_nl_table()
                };
                let rec_bytes = geometry.record();
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
                            _mm256_cvtph_ps(_mm_loadu_si128(rec.add(SCALE_VECTOR) as *const __m128i))
                        } else {
                            dw
                        };
                        // Eight weight vectors per set pair. Q4: [A lo c0, A hi c0,
                        // A lo c1, A hi c1, B ...] meeting activation chunks
                        // [0, 2, 1, 3]; Q8_0: [A c0..c3, B c0..c3] as |w|, with the
                        // raw w kept for the signs; IQ4_NL: Q4's order, as levels.
                        let q = rec.add(geometry.quants_at());
                        let loaded: [__m256i; 8] = core::array::from_fn(|k| {
                            if q8 {
                                _mm256_loadu_si256(q.add(32 * k) as *const __m256i)
                            } else {
                                _mm256_loadu_si256(q.add(32 * (k / 2)) as *const __m256i)
                            }
                        });
                        let raw: [__m256i; 8] = core::array::from_fn(|k| {
                            if iq4 {
                                let n = if k % 2 == 0 { loaded[k] } else { _mm256_srli_epi16::<4>(loaded[k]) };
                                _mm256_shuffle_epi8(table, _mm256_and_si256(n, mask))
                            } else {
                                loaded[k]
                            }
                        });
                        let planes = if five {
                            _mm256_loadu_si256(rec.add(geometry.planes_at()) as *const __m256i)
                        } else {
                            mask
                        };
                        let w: [__m256i; 8] = core::array::from_fn(|k| {
                            let n = if signed {
                                _mm256_sign_epi8(raw[k], raw[k])
                            } else if iq4 {
                                raw[k]
                            } else if k % 2 == 0 {
                                _mm256_and_si256(raw[k], mask)
                            } else {
                                _mm256_and_si256(_mm256_srli_epi16::<4>(raw[k]), mask)
                            };
                            if five {
                                _mm256_or_si256(n, super::avx2_packed::fifth_bits(planes, k))
                            } else {
                                n
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
                                        if signed {
                                            _mm256_sign_epi8(a, raw[4 * s + k])
                                        } else {
                                            a
                                        },
                                    )
                                });
                                if signed {
                                    $dot_q8(pairs)
                                } else {
                                    $dot_q4(pairs)
                                }
                            };
                            let mut isum = _mm256_hadd_epi32(set(0), set(1));
                            if KIND == 0 {
                                isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * acts.sum(t)[b]));
                            } else if KIND == 3 {
                                isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(16 * acts.sum(t)[b]));
                            } else if iq4_unsigned {
                                isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(128 * acts.sum(t)[b]));
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
            // SAFETY: forwarded (see `GroupKernels for Avx2`).
            unsafe {
                match ty {
                    GgmlType::Q4_0 => body::<0>(grp, acts, t0, out),
                    GgmlType::Q4_1 => body::<1>(grp, acts, t0, out),
                    GgmlType::Q5_0 => body::<3>(grp, acts, t0, out),
                    GgmlType::Q5_1 => body::<4>(grp, acts, t0, out),
                    GgmlType::IQ4_NL => body::<5>(grp, acts, t0, out),
                    _ => body::<2>(grp, acts, t0, out),
                }
            }
        }
    };
}
pub(super) use batch_kernel;

/// Four u8 x i8 byte dot products per 32-bit lane for 4- or 5-bit weights:
/// the four `vpmaddubsw` results are summed in 16 bits (at most 8 * 31 * 128
/// = 31744 < 2^15) and widened once.
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

batch_kernel!("avx2,fma,f16c", batch_avx2, dot_q4, dot_q8, false);
