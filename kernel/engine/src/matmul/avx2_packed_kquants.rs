//! SIMD kernels for packed Q2_K..Q6_K (layout: [`super::packed_kquants`]):
//! one group of 8 rows and a tile of up to [`TOKEN_TILE`] tokens per call.
//!
//! Per super-block and block pair, the weights are loaded and unpacked once
//! and every token of the tile meets them: one 8-byte activation broadcast
//! serves 4 rows per `vpmaddubsw`, nibble (Q4_K), 5-bit (Q5_K: the nibbles
//! with the fifth bit OR-ed in as 0x10), 2-bit (Q2_K), 3-bit (Q3_K, as `q + 4`) or 6-bit (Q6_K, as `q + 32`)
//! products are summed in 16 bits, and the per-row scales (expanded from the
//! record's bytes with one `vpshufb` per set) go in with the `vpmaddwd` that
//! widens them. Each token gets the exact integer sums of
//! [`super::scalar::super_dot`] (`isum`, and `msum` from the minimums and the
//! Q8_K block sums; Q6_K's offset `32 · Σ sc · bsum`, Q3_K's `4 · Σ sc · bsum`, are subtracted the same
//! way) and then its float sequence, so packed and ggml layouts, every tile
//! size and every ISA give the same bits.
//!
//! The code is one macro, instantiated for AVX2, for the AVX-512 path (the
//! same instructions compiled with AVX-512 VL: 32 vector registers for the
//! compiler) and for the VNNI path, where each scale's products are one
//! 256-bit `vpdpbusd` chain and a `vpmulld` by the scale instead (exact
//! too; a few percent to 10% faster on Zen 4, docs/performance.md).

use core::arch::x86_64::*;

use super::avx2::{prefetch_ahead, Avx2};
use super::avx2_packed::bcast8;
use super::packed::GROUP_ROWS;
use super::packed_kquants::{q2k, q3k, q4k, q5k, q6k, record_bytes, TOKEN_TILE};
use super::{ActBuf, ActKind};
use crate::ggml_type::GgmlType;
use crate::quant::kquants::QK_K;

/// `vpshufb` controls that turn 16 pair-interleaved i16 scales (row `i`'s
/// pair at lanes `2i, 2i + 1`: rows 0..4 in the low 128 bits, 4..8 in the
/// high) into the vector for set `s`, pair member `h`: each 64-bit lane holds
/// its row's scale 4 times. The same control serves both 128-bit halves.
const fn scale_shuffle(s: usize, h: usize) -> [u8; 32] {
    let mut c = [0u8; 32];
    let mut at = 0;
    while at < 32 {
        let lane = (at % 16) / 8;
        let b0 = 2 * (2 * (2 * s + lane) + h);
        c[at] = b0 as u8;
        c[at + 1] = b0 as u8 + 1;
        at += 2;
    }
    c
}

const SCALE_SHUFFLES: [[[u8; 32]; 2]; 2] = [[scale_shuffle(0, 0), scale_shuffle(0, 1)], [scale_shuffle(1, 0), scale_shuffle(1, 1)]];

/// The same selection as [`scale_shuffle`] into the high half of each i32
/// lane (low half zero), for [`scale_i32`]'s sign-extending shift.
const fn scale_shuffle_i32(s: usize, h: usize) -> [u8; 32] {
    let c16 = scale_shuffle(s, h);
    let mut c = [0x80u8; 32];
    let mut at = 0;
    while at < 32 {
        c[at + 2] = c16[at];
        c[at + 3] = c16[at + 1];
        at += 4;
    }
    c
}

const SCALE_SHUFFLES_I32: [[[u8; 32]; 2]; 2] = [[scale_shuffle_i32(0, 0), scale_shuffle_i32(0, 1)], [scale_shuffle_i32(1, 0), scale_shuffle_i32(1, 1)]];

// The integer dot products, in two flavours with the same exact results.
// `dot4`: sum over 4 chunks of `w · a` (u8 x i8), times the row scales;
// `dot2x2`: chunks 0-1 times scales `sc0`, plus chunks 2-3 times `sc1`.

/// AVX2 scale vector: 4 i16 copies of the row's scale per 64-bit lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scale_i16(sc: __m256i, ctl: __m256i) -> __m256i {
    _mm256_shuffle_epi8(sc, ctl)
}

/// AVX2: `vpmaddubsw` products summed in 16 bits (at most 8 5-bit or 4
/// 6-bit products per lane: 8 · 31 · 128 < 2^15), widened by the scale `vpmaddwd`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot4_i16(w: &[__m256i; 4], a: &[__m256i; 4], sc: __m256i) -> __m256i {
    let m: [__m256i; 4] = core::array::from_fn(|c| _mm256_maddubs_epi16(w[c], a[c]));
    _mm256_madd_epi16(_mm256_add_epi16(_mm256_add_epi16(m[0], m[1]), _mm256_add_epi16(m[2], m[3])), sc)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot2x2_i16(w: &[__m256i; 4], a: &[__m256i; 4], sc0: __m256i, sc1: __m256i) -> __m256i {
    let m: [__m256i; 4] = core::array::from_fn(|c| _mm256_maddubs_epi16(w[c], a[c]));
    _mm256_add_epi32(_mm256_madd_epi16(_mm256_add_epi16(m[0], m[1]), sc0), _mm256_madd_epi16(_mm256_add_epi16(m[2], m[3]), sc1))
}

/// VNNI scale vector: the row's scale as 2 sign-extended i32 per 64-bit lane.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn scale_i32(sc: __m256i, ctl: __m256i) -> __m256i {
    _mm256_srai_epi32::<16>(_mm256_shuffle_epi8(sc, ctl))
}

/// VNNI: a `vpdpbusd` chain per scale, then one `vpmulld`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dot4_vnni(w: &[__m256i; 4], a: &[__m256i; 4], sc: __m256i) -> __m256i {
    let mut x = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w[0], a[0]);
    for c in 1..4 {
        x = _mm256_dpbusd_epi32(x, w[c], a[c]);
    }
    _mm256_mullo_epi32(x, sc)
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dot2x2_vnni(w: &[__m256i; 4], a: &[__m256i; 4], sc0: __m256i, sc1: __m256i) -> __m256i {
    let lo = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), w[0], a[0]), w[1], a[1]);
    let hi = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), w[2], a[2]), w[3], a[3]);
    _mm256_add_epi32(_mm256_mullo_epi32(lo, sc0), _mm256_mullo_epi32(hi, sc1))
}

/// Two i16 values as the i32 `lo | hi << 16` (a `vpmaddwd` pair).
#[inline]
fn i16_pair(lo: i32, hi: i32) -> i32 {
    ((hi as i16 as u16 as u32) << 16 | (lo as i16 as u16 as u32)) as i32
}

/// Generates the entry point `$entry(ty, group, acts, t0, out)` for one set
/// of target features.
macro_rules! kquant_kernels {
    ($feat:literal, $entry:ident, $shuffles:ident, $scale:ident, $dot4:ident, $dot2x2:ident) => {
        /// # Safety
        /// The CPU runs `$feat`; `grp` points to a group of a packed `ty`
        /// matrix holding a record per super-block of `acts` (Q8_K); tokens
        /// `t0..t0 + out.len()` exist and `out.len() <= TOKEN_TILE`.
        #[target_feature(enable = $feat)]
        unsafe fn $entry(ty: GgmlType, grp: *const u8, acts: &ActBuf, t0: usize, out: &mut [[f32; GROUP_ROWS]]) {
            #[target_feature(enable = $feat)]
            unsafe fn load_shuffles() -> [[__m256i; 2]; 2] {
                // SAFETY: each table is 32 bytes.
                core::array::from_fn(|s| core::array::from_fn(|h| unsafe { _mm256_loadu_si256($shuffles[s][h].as_ptr() as *const __m256i) }))
            }

            #[target_feature(enable = $feat)]
            unsafe fn store(v: __m256, o: &mut [f32; GROUP_ROWS]) {
                // SAFETY: o has room for 8 floats.
                unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) }
            }

            /// Q4_K, or Q5_K if `FIVE`. `TILE` is the tile's capacity (1 for
            /// decode), `out.len()` its tokens.
            #[target_feature(enable = $feat)]
            unsafe fn q45_k<const TILE: usize, const FIVE: bool>(grp: *const u8, acts: &ActBuf, t0: usize, out: &mut [[f32; GROUP_ROWS]]) {
                let nt = out.len();
                let record = if FIVE { q5k::RECORD } else { q4k::RECORD };
                let mask = _mm256_set1_epi8(0x0f);
                let fifth = _mm256_set1_epi8(0x10);
                // SAFETY: the features are enabled here.
                let shuf = unsafe { load_shuffles() };
                let mut acc = [_mm256_setzero_ps(); TILE];
                let mut macc = [_mm256_setzero_ps(); TILE];
                for sb in 0..acts.cols() / QK_K {
                    // SAFETY: the group holds a record per super-block and the
                    // tokens' activations exist (the caller's contract).
                    unsafe {
                        let rec = grp.add(sb * record);
                        prefetch_ahead(rec, record.div_ceil(64));
                        let mut isum = [[_mm256_setzero_si256(); 2]; TILE];
                        let mut msum = [_mm256_setzero_si256(); TILE];
                        for p in 0..4 {
                            let sc = _mm256_cvtepu8_epi16(_mm_loadu_si128(rec.add(q4k::SCALES + 16 * p) as *const __m128i));
                            let mins = _mm256_cvtepu8_epi16(_mm_loadu_si128(rec.add(q4k::MINS + 16 * p) as *const __m128i));
                            // Per set: the two blocks' scale vectors and the
                            // 4 chunk vectors' low (block 2p) and high nibbles.
                            let scv: [[__m256i; 2]; 2] = core::array::from_fn(|s| core::array::from_fn(|h| $scale(sc, shuf[s][h])));
                            // (Plain loops: as closures the compiler may keep
                            // them out of line.) Q5_K: bits 2p and 2p + 1 of
                            // the fifth-bit bytes go to bit 4 of blocks 2p, 2p + 1.
                            let mut w = [[[_mm256_setzero_si256(); 4]; 2]; 2];
                            for (s, ws) in w.iter_mut().enumerate() {
                                let q = rec.add(q4k::QUANTS + 32 * 4 * (2 * p + s));
                                for c in 0..4 {
                                    let raw = _mm256_loadu_si256(q.add(32 * c) as *const __m256i);
                                    ws[0][c] = _mm256_and_si256(raw, mask);
                                    ws[1][c] = _mm256_and_si256(_mm256_srli_epi16::<4>(raw), mask);
                                    if FIVE {
                                        let qh = _mm256_loadu_si256(rec.add(q5k::QH + 32 * (4 * s + c)) as *const __m256i);
                                        let qh = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * p as i32));
                                        ws[0][c] = _mm256_or_si256(ws[0][c], _mm256_and_si256(_mm256_slli_epi16::<4>(qh), fifth));
                                        ws[1][c] = _mm256_or_si256(ws[1][c], _mm256_and_si256(_mm256_slli_epi16::<3>(qh), fifth));
                                    }
                                }
                            }
                            for i in 0..nt {
                                let t = t0 + i;
                                let a = acts.qs(t).as_ptr().add(sb * QK_K + 64 * p);
                                let b = a.add(32);
                                let av = [
                                    [bcast8(a), bcast8(a.add(8)), bcast8(a.add(16)), bcast8(a.add(24))],
                                    [bcast8(b), bcast8(b.add(8)), bcast8(b.add(16)), bcast8(b.add(24))],
                                ];
                                for s in 0..2 {
                                    for h in 0..2 {
                                        isum[i][s] = _mm256_add_epi32(isum[i][s], $dot4(&w[s][h], &av[h], scv[s][h]));
                                    }
                                }
                                let bs = &acts.bsums(t)[16 * sb + 4 * p..][..4];
                                let bpair = _mm256_set1_epi32(i16_pair(bs[0] + bs[1], bs[2] + bs[3]));
                                msum[i] = _mm256_add_epi32(msum[i], _mm256_madd_epi16(mins, bpair));
                            }
                        }
                        let dw = _mm256_cvtph_ps(_mm_loadu_si128(rec.add(q4k::D) as *const __m128i));
                        let dmin = _mm256_cvtph_ps(_mm_loadu_si128(rec.add(q4k::DMIN) as *const __m128i));
                        for i in 0..nt {
                            let dk = _mm256_set1_ps(acts.dk(t0 + i)[sb]);
                            let rows = _mm256_hadd_epi32(isum[i][0], isum[i][1]);
                            acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dk), _mm256_cvtepi32_ps(rows), acc[i]);
                            macc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dmin, dk), _mm256_cvtepi32_ps(msum[i]), macc[i]);
                        }
                    }
                }
                for (i, o) in out.iter_mut().enumerate() {
                    // SAFETY: plain store.
                    unsafe { store(_mm256_sub_ps(acc[i], macc[i]), o) };
                }
            }

            /// Q6_K, or Q3_K if `THREE` (the same scheme: levels `u = q + 32`
            /// or `q + 4`, i8 scales per 16, the offset taken once).
            #[target_feature(enable = $feat)]
            unsafe fn q36_k<const TILE: usize, const THREE: bool>(grp: *const u8, acts: &ActBuf, t0: usize, out: &mut [[f32; GROUP_ROWS]]) {
                let nt = out.len();
                let (record, scales_at, d_at) = if THREE { (q3k::RECORD, q3k::SCALES, q3k::D) } else { (q6k::RECORD, q6k::SCALES, q6k::D) };
                let mask = _mm256_set1_epi8(0x0f);
                let high = _mm256_set1_epi8(0x30);
                let (two, third) = (_mm256_set1_epi8(3), _mm256_set1_epi8(4));
                // SAFETY: the features are enabled here.
                let shuf = unsafe { load_shuffles() };
                let mut acc = [_mm256_setzero_ps(); TILE];
                for sb in 0..acts.cols() / QK_K {
                    // SAFETY: as in `q45_k`.
                    unsafe {
                        let rec = grp.add(sb * record);
                        prefetch_ahead(rec, record.div_ceil(64));
                        let mut isum = [[_mm256_setzero_si256(); 2]; TILE];
                        let mut corr = [_mm256_setzero_si256(); TILE];
                        for n in 0..2 {
                            // Block 4n + h's two scale pairs, and per set
                            // the levels u of its 4 chunks.
                            let sc: [__m256i; 4] = core::array::from_fn(|h| _mm256_cvtepi8_epi16(_mm_loadu_si128(rec.add(scales_at + 16 * (4 * n + h)) as *const __m128i)));
                            let scv: [[[__m256i; 2]; 4]; 2] = core::array::from_fn(|s| core::array::from_fn(|h| core::array::from_fn(|k| $scale(sc[h], shuf[s][k]))));
                            // (Plain loops: as a closure the compiler kept this out of line.)
                            let mut u = [[[_mm256_setzero_si256(); 4]; 4]; 2];
                            if THREE {
                                // Block 4n + h: bits 2h.. of the low-bit bytes,
                                // bit 4n + h of the third-bit bytes as bit 2.
                                for (s, us) in u.iter_mut().enumerate() {
                                    for c in 0..4 {
                                        let ql = _mm256_loadu_si256(rec.add(q3k::QUANTS + 32 * ((2 * n + s) * 4 + c)) as *const __m256i);
                                        let hm = _mm256_loadu_si256(rec.add(q3k::HMASK + 32 * (4 * s + c)) as *const __m256i);
                                        for (h, uh) in us.iter_mut().enumerate() {
                                            let low = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(2 * h as i32)), two);
                                            let hi = _mm256_and_si256(_mm256_slli_epi16::<2>(_mm256_srl_epi16(hm, _mm_cvtsi32_si128((4 * n + h) as i32))), third);
                                            uh[c] = _mm256_or_si256(low, hi);
                                        }
                                    }
                                }
                            } else {
                                for (s, us) in u.iter_mut().enumerate() {
                                    let q = rec.add(q6k::QUANTS + 32 * 12 * (2 * n + s));
                                    for c in 0..4 {
                                        let ql0 = _mm256_loadu_si256(q.add(32 * c) as *const __m256i);
                                        let ql1 = _mm256_loadu_si256(q.add(32 * (4 + c)) as *const __m256i);
                                        let qh = _mm256_loadu_si256(q.add(32 * (8 + c)) as *const __m256i);
                                        us[0][c] = _mm256_or_si256(_mm256_and_si256(ql0, mask), _mm256_and_si256(_mm256_slli_epi16::<4>(qh), high));
                                        us[1][c] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(ql0), mask), _mm256_and_si256(_mm256_slli_epi16::<2>(qh), high));
                                        us[2][c] = _mm256_or_si256(_mm256_and_si256(ql1, mask), _mm256_and_si256(qh, high));
                                        us[3][c] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(ql1), mask), _mm256_and_si256(_mm256_srli_epi16::<2>(qh), high));
                                    }
                                }
                            }
                            for i in 0..nt {
                                let t = t0 + i;
                                let bs = acts.bsums(t);
                                for h in 0..4 {
                                    let j = 4 * n + h;
                                    let a = acts.qs(t).as_ptr().add(sb * QK_K + 32 * j);
                                    let av = [bcast8(a), bcast8(a.add(8)), bcast8(a.add(16)), bcast8(a.add(24))];
                                    for s in 0..2 {
                                        isum[i][s] = _mm256_add_epi32(isum[i][s], $dot2x2(&u[s][h], &av, scv[s][h][0], scv[s][h][1]));
                                    }
                                    let bpair = _mm256_set1_epi32(i16_pair(bs[16 * sb + 2 * j], bs[16 * sb + 2 * j + 1]));
                                    corr[i] = _mm256_add_epi32(corr[i], _mm256_madd_epi16(sc[h], bpair));
                                }
                            }
                        }
                        let dw = _mm256_cvtph_ps(_mm_loadu_si128(rec.add(d_at) as *const __m128i));
                        for i in 0..nt {
                            // sum(sc * (u - 32) * a) = sum(sc * u * a) - 32 * sum(sc * bsum)
                            // (Q3_K: 4 instead of 32).
                            let offset = if THREE { _mm256_slli_epi32::<2>(corr[i]) } else { _mm256_slli_epi32::<5>(corr[i]) };
                            let rows = _mm256_sub_epi32(_mm256_hadd_epi32(isum[i][0], isum[i][1]), offset);
                            let dk = _mm256_set1_ps(acts.dk(t0 + i)[sb]);
                            acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dk), _mm256_cvtepi32_ps(rows), acc[i]);
                        }
                    }
                }
                for (i, o) in out.iter_mut().enumerate() {
                    // SAFETY: plain store.
                    unsafe { store(acc[i], o) };
                }
            }

            /// Q2_K: `q36_k`'s scheme with the 2-bit quants as they are,
            /// unsigned 4-bit scales, and the minimums' `msum` (from the same
            /// scale bytes' high nibbles) taken with `dmin` as in `q45_k`.
            #[target_feature(enable = $feat)]
            unsafe fn q2_k<const TILE: usize>(grp: *const u8, acts: &ActBuf, t0: usize, out: &mut [[f32; GROUP_ROWS]]) {
                let nt = out.len();
                let two = _mm256_set1_epi8(3);
                let nibble = _mm256_set1_epi16(0x0f);
                // SAFETY: the features are enabled here.
                let shuf = unsafe { load_shuffles() };
                let mut acc = [_mm256_setzero_ps(); TILE];
                let mut macc = [_mm256_setzero_ps(); TILE];
                for sb in 0..acts.cols() / QK_K {
                    // SAFETY: as in `q45_k`.
                    unsafe {
                        let rec = grp.add(sb * q2k::RECORD);
                        prefetch_ahead(rec, q2k::RECORD.div_ceil(64));
                        let mut isum = [[_mm256_setzero_si256(); 2]; TILE];
                        let mut msum = [_mm256_setzero_si256(); TILE];
                        for n in 0..2 {
                            // Block 4n + h's scale and minimum pairs (i16), and
                            // per set the quants of its 4 chunks.
                            let raw: [__m256i; 4] = core::array::from_fn(|h| _mm256_cvtepu8_epi16(_mm_loadu_si128(rec.add(q2k::SCALES + 16 * (4 * n + h)) as *const __m128i)));
                            let sc: [__m256i; 4] = core::array::from_fn(|h| _mm256_and_si256(raw[h], nibble));
                            let mins: [__m256i; 4] = core::array::from_fn(|h| _mm256_srli_epi16::<4>(raw[h]));
                            let scv: [[[__m256i; 2]; 4]; 2] = core::array::from_fn(|s| core::array::from_fn(|h| core::array::from_fn(|k| $scale(sc[h], shuf[s][k]))));
                            let mut u = [[[_mm256_setzero_si256(); 4]; 4]; 2];
                            for (s, us) in u.iter_mut().enumerate() {
                                for c in 0..4 {
                                    let ql = _mm256_loadu_si256(rec.add(q2k::QUANTS + 32 * ((2 * n + s) * 4 + c)) as *const __m256i);
                                    for (h, uh) in us.iter_mut().enumerate() {
                                        uh[c] = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(2 * h as i32)), two);
                                    }
                                }
                            }
                            for i in 0..nt {
                                let t = t0 + i;
                                let bs = acts.bsums(t);
                                for h in 0..4 {
                                    let j = 4 * n + h;
                                    let a = acts.qs(t).as_ptr().add(sb * QK_K + 32 * j);
                                    let av = [bcast8(a), bcast8(a.add(8)), bcast8(a.add(16)), bcast8(a.add(24))];
                                    for s in 0..2 {
                                        isum[i][s] = _mm256_add_epi32(isum[i][s], $dot2x2(&u[s][h], &av, scv[s][h][0], scv[s][h][1]));
                                    }
                                    let bpair = _mm256_set1_epi32(i16_pair(bs[16 * sb + 2 * j], bs[16 * sb + 2 * j + 1]));
                                    msum[i] = _mm256_add_epi32(msum[i], _mm256_madd_epi16(mins[h], bpair));
                                }
                            }
                        }
                        let dw = _mm256_cvtph_ps(_mm_loadu_si128(rec.add(q2k::D) as *const __m128i));
                        let dmin = _mm256_cvtph_ps(_mm_loadu_si128(rec.add(q2k::DMIN) as *const __m128i));
                        for i in 0..nt {
                            let dk = _mm256_set1_ps(acts.dk(t0 + i)[sb]);
                            let rows = _mm256_hadd_epi32(isum[i][0], isum[i][1]);
                            acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dk), _mm256_cvtepi32_ps(rows), acc[i]);
                            macc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dmin, dk), _mm256_cvtepi32_ps(msum[i]), macc[i]);
                        }
                    }
                }
                for (i, o) in out.iter_mut().enumerate() {
                    // SAFETY: plain store.
                    unsafe { store(_mm256_sub_ps(acc[i], macc[i]), o) };
                }
            }

            // SAFETY: forwarded.
            unsafe {
                match (ty, out.len()) {
                    (GgmlType::Q4_K, 1) => q45_k::<1, false>(grp, acts, t0, out),
                    (GgmlType::Q4_K, _) => q45_k::<TOKEN_TILE, false>(grp, acts, t0, out),
                    (GgmlType::Q5_K, 1) => q45_k::<1, true>(grp, acts, t0, out),
                    (GgmlType::Q5_K, _) => q45_k::<TOKEN_TILE, true>(grp, acts, t0, out),
                    (GgmlType::Q6_K, 1) => q36_k::<1, false>(grp, acts, t0, out),
                    (GgmlType::Q6_K, _) => q36_k::<TOKEN_TILE, false>(grp, acts, t0, out),
                    (GgmlType::Q2_K, 1) => q2_k::<1>(grp, acts, t0, out),
                    (GgmlType::Q2_K, _) => q2_k::<TOKEN_TILE>(grp, acts, t0, out),
                    (GgmlType::Q3_K, 1) => q36_k::<1, true>(grp, acts, t0, out),
                    (GgmlType::Q3_K, _) => q36_k::<TOKEN_TILE, true>(grp, acts, t0, out),
                    _ => unreachable!("checked by packed_kquant_group"),
                }
            }
        }
    };
}

kquant_kernels!("avx2,fma,f16c", group_avx2, SCALE_SHUFFLES, scale_i16, dot4_i16, dot2x2_i16);
kquant_kernels!("avx512f,avx512bw,avx512vl,avx2,fma,f16c", group_avx512, SCALE_SHUFFLES, scale_i16, dot4_i16, dot2x2_i16);
kquant_kernels!("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c", group_vnni, SCALE_SHUFFLES_I32, scale_i32, dot4_vnni, dot2x2_vnni);

/// Which instantiation [`Avx2::packed_kquant_group`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Width {
    /// The AVX2 code.
    Avx2,
    /// The same code compiled with AVX-512 VL (32 registers).
    Avx512(super::avx512::Avx512),
    /// As `Avx512`, on the VNNI path (whose CPUs have AVX-512 F/BW/VL).
    Avx512Vnni(super::avx512::Avx512Vnni),
}

impl Avx2 {
    /// Tokens `t0..t0 + out.len()` of `acts` against one group (`grp`) of a
    /// packed Q2_K..Q6_K matrix: `out[i]` = the group's 8 rows for token
    /// `t0 + i`. Panics if the group is too short for the activations, they
    /// are not Q8_K, or the tokens do not exist.
    pub(super) fn packed_kquant_group(self, width: Width, ty: GgmlType, grp: &[u8], acts: &ActBuf, t0: usize, out: &mut [[f32; GROUP_ROWS]]) {
        let record = record_bytes(ty).unwrap_or_else(|| panic!("{ty} has no packed K-quant form"));
        assert!(acts.kind() == ActKind::Q8_K && acts.cols().is_multiple_of(QK_K), "activations not quantized for {ty}");
        assert!(grp.len() >= acts.cols() / QK_K * record, "a {ty} group of {} bytes for {} columns", grp.len(), acts.cols());
        assert!(!out.is_empty() && out.len() <= TOKEN_TILE && t0 + out.len() <= acts.batch(), "tokens {t0}..+{} of {}", out.len(), acts.batch());
        match width {
            // SAFETY: `self` proves AVX2+FMA+F16C; the group, activations and
            // tokens were checked above.
            Width::Avx2 => unsafe { group_avx2(ty, grp.as_ptr(), acts, t0, out) },
            // SAFETY: as above, and the `Avx512` value proves AVX-512 F/BW/VL.
            Width::Avx512(_) => unsafe { group_avx512(ty, grp.as_ptr(), acts, t0, out) },
            // SAFETY: as above, and the `Avx512Vnni` value proves AVX-512
            // F/BW/VL and VNNI.
            Width::Avx512Vnni(_) => unsafe { group_vnni(ty, grp.as_ptr(), acts, t0, out) },
        }
    }
}
