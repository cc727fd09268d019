//! The block types beyond Q4_0/Q4_1/Q8_0: Q5_0, Q5_1, IQ4_NL (32-element
//! blocks), the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (256-element
//! super-blocks) and BF16, in llama.cpp's byte layouts.
//!
//! Each quantized block is decoded here into one integer form, the single
//! definition both [`dequantize`] and the scalar matmul reference use:
//!
//! - 32-element types ([`Small`]): `x[e] = d * q[e] + m` (`m = 0` for Q5_0 and
//!   IQ4_NL), with `q` the signed integer level (Q5_0: `0..32 - 16`, IQ4_NL:
//!   the non-linear table value, Q5_1: `0..32`).
//! - K-quants ([`Super`]): `x[e] = (d * sc[e / 16]) * q[e] - (dmin * m[e / 16])`,
//!   with integer levels `q`, 16 integer sub-block scales `sc` and minimums `m`
//!   (Q4_K and Q5_K repeat each of their 8 per-32 scales twice; Q3_K and Q6_K
//!   have no minimum term at all).
//!
//! The float expressions are ggml's `dequantize_row_*` operation for
//! operation (no fused multiply-add), so [`dequantize`] is bit-identical to
//! ggml's `to_float`; `kernel/engine/testdata/ggml-quants/` holds blocks ggml
//! encoded and decoded, and the tests compare with `==`.

use super::f16::f16_to_f32;
use super::QK;

/// Elements of a K-quant super-block.
pub const QK_K: usize = 256;

/// IQ4_NL's 16 levels (ggml's `kvalues_iq4nl`).
pub const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

#[inline]
fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// A decoded 32-element block.
#[derive(Clone, Copy, Debug)]
pub struct Small {
    /// Scale, from f16.
    pub d: f32,
    /// Offset (Q5_1's `m`), from f16; `None` for Q5_0 and IQ4_NL.
    pub m: Option<f32>,
    /// Integer levels.
    pub q: [i8; QK],
    /// The f16 bits of `d` (and `m`), as stored.
    pub d_bits: u16,
    pub m_bits: u16,
}

/// Byte offsets of Q5_0 / Q5_1 fields: `d` [, `m`], `qh` (u32), `qs` (16 bytes).
pub const Q5_0_QH_AT: usize = 2;
pub const Q5_1_QH_AT: usize = 4;

/// The 5-bit levels of a Q5_0/Q5_1 block whose `qh` starts at `qh_at`
/// (element `j` has its low nibble in `qs[j % 16]`, its fifth bit in bit `j` of `qh`).
fn q5_levels(b: &[u8], qh_at: usize, offset: i8) -> [i8; QK] {
    let qh = u32::from_le_bytes([b[qh_at], b[qh_at + 1], b[qh_at + 2], b[qh_at + 3]]);
    let qs = &b[qh_at + 4..qh_at + 4 + QK / 2];
    let mut q = [0i8; QK];
    for j in 0..QK / 2 {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        q[j] = ((qs[j] as u32 & 0x0f) | h0) as i8 - offset;
        q[j + QK / 2] = ((qs[j] as u32 >> 4) | h1) as i8 - offset;
    }
    q
}

/// Decodes a Q5_0 block (22 bytes: `d`, `qh[4]`, `qs[16]`).
pub fn decode_q5_0(b: &[u8]) -> Small {
    let d_bits = le16(b, 0);
    Small { d: f16_to_f32(d_bits), m: None, q: q5_levels(b, Q5_0_QH_AT, 16), d_bits, m_bits: 0 }
}

/// Decodes a Q5_1 block (24 bytes: `d`, `m`, `qh[4]`, `qs[16]`).
pub fn decode_q5_1(b: &[u8]) -> Small {
    let (d_bits, m_bits) = (le16(b, 0), le16(b, 2));
    Small { d: f16_to_f32(d_bits), m: Some(f16_to_f32(m_bits)), q: q5_levels(b, Q5_1_QH_AT, 0), d_bits, m_bits }
}

/// Decodes an IQ4_NL block (18 bytes: `d`, `qs[16]`, nibbles index [`KVALUES_IQ4NL`]).
pub fn decode_iq4_nl(b: &[u8]) -> Small {
    let d_bits = le16(b, 0);
    let mut q = [0i8; QK];
    for j in 0..QK / 2 {
        q[j] = KVALUES_IQ4NL[(b[2 + j] & 0x0f) as usize];
        q[j + QK / 2] = KVALUES_IQ4NL[(b[2 + j] >> 4) as usize];
    }
    Small { d: f16_to_f32(d_bits), m: None, q, d_bits, m_bits: 0 }
}

/// A decoded K-quant super-block.
#[derive(Clone, Copy, Debug)]
pub struct Super {
    /// Super-block scale, from f16.
    pub d: f32,
    /// Super-block minimum scale (Q2_K, Q4_K, Q5_K), from f16; `None` for Q3_K, Q6_K.
    pub dmin: Option<f32>,
    /// Scale of each 16 elements.
    pub sc: [i32; 16],
    /// Minimum of each 16 elements (zero without `dmin`).
    pub m: [i32; 16],
    /// Integer levels.
    pub q: [i8; QK_K],
}

/// Q4_K/Q5_K's 6-bit scale and minimum of sub-block `j` (0..8) from the
/// 12 packed scale bytes (ggml's `get_scale_min_k4`).
#[inline]
pub fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// All 8 of Q4_K/Q5_K's scales and minimums at once, branch-free (ggml's
/// `utmp` trick in its x86 dot products): `[sc0..sc8, m0..m8]` as bytes
/// (equal to [`scale_min_k4`] for every `j`; tested).
#[inline]
pub fn scales_mins_k4(s: &[u8]) -> [u8; 16] {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    let w = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (u0, u1, u2) = (w(0), w(1), w(2));
    let sc_lo = u0 & KMASK1;
    let sc_hi = (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4);
    let m_lo = u1 & KMASK1;
    let m_hi = ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4);
    let mut out = [0u8; 16];
    for (i, v) in [sc_lo, sc_hi, m_lo, m_hi].into_iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    out
}

/// Q3_K's 16 6-bit scales (before subtracting 32) from its 12 packed bytes.
#[inline]
pub fn q3_k_scale(k: usize, s: &[u8]) -> u8 {
    let (g, i) = (k / 4, k % 4);
    let low = (s[(g & 1) * 4 + i] >> (4 * (g >> 1))) & 0x0f;
    let high = (s[8 + i] >> (2 * g)) & 3;
    low | (high << 4)
}

/// Byte offsets inside each K-quant super-block.
pub mod at {
    /// Q2_K (84 bytes): `scales[16]` (low nibble scale, high nibble minimum), `qs[64]`, `d`, `dmin`.
    pub const Q2_K_QS: usize = 16;
    pub const Q2_K_D: usize = 80;
    /// Q3_K (110 bytes): `hmask[32]`, `qs[64]`, `scales[12]`, `d`.
    pub const Q3_K_QS: usize = 32;
    pub const Q3_K_SCALES: usize = 96;
    pub const Q3_K_D: usize = 108;
    /// Q4_K (144 bytes): `d`, `dmin`, `scales[12]`, `qs[128]`.
    pub const Q4_K_SCALES: usize = 4;
    pub const Q4_K_QS: usize = 16;
    /// Q5_K (176 bytes): `d`, `dmin`, `scales[12]`, `qh[32]`, `qs[128]`.
    pub const Q5_K_QH: usize = 16;
    pub const Q5_K_QS: usize = 48;
    /// Q6_K (210 bytes): `ql[128]`, `qh[64]`, `scales[16]` (i8), `d`.
    pub const Q6_K_QH: usize = 128;
    pub const Q6_K_SCALES: usize = 192;
    pub const Q6_K_D: usize = 208;
}

/// Decodes a Q2_K super-block.
pub fn decode_q2_k(b: &[u8]) -> Super {
    let mut s = Super { d: f16_to_f32(le16(b, at::Q2_K_D)), dmin: Some(f16_to_f32(le16(b, at::Q2_K_D + 2))), sc: [0; 16], m: [0; 16], q: [0; QK_K] };
    for (k, &byte) in b[..16].iter().enumerate() {
        s.sc[k] = (byte & 0x0f) as i32;
        s.m[k] = (byte >> 4) as i32;
    }
    // Element 128n + 32j + l takes bits 2j..2j+2 of qs[32n + l].
    for e in 0..QK_K {
        let (n, j, l) = (e / 128, (e % 128) / 32, e % 32);
        s.q[e] = ((b[at::Q2_K_QS + 32 * n + l] >> (2 * j)) & 3) as i8;
    }
    s
}

/// Decodes a Q3_K super-block.
pub fn decode_q3_k(b: &[u8]) -> Super {
    let mut s = Super { d: f16_to_f32(le16(b, at::Q3_K_D)), dmin: None, sc: [0; 16], m: [0; 16], q: [0; QK_K] };
    let scales = &b[at::Q3_K_SCALES..at::Q3_K_SCALES + 12];
    for k in 0..16 {
        s.sc[k] = q3_k_scale(k, scales) as i32 - 32;
    }
    // Element 128n + 32j + l: bits 2j.. of qs[32n + l], minus 4 unless bit
    // 4n + j of hmask[l] is set.
    for e in 0..QK_K {
        let (n, j, l) = (e / 128, (e % 128) / 32, e % 32);
        let low = ((b[at::Q3_K_QS + 32 * n + l] >> (2 * j)) & 3) as i8;
        let high = b[l] & (1 << (4 * n + j)) != 0;
        s.q[e] = low - if high { 0 } else { 4 };
    }
    s
}

/// Decodes a Q4_K super-block.
pub fn decode_q4_k(b: &[u8]) -> Super {
    let mut s = decode_q4_k_scales_only(b);
    // Sub-block j takes the low (j even) or high nibbles of qs[32 * (j / 2)..][..32].
    for e in 0..QK_K {
        let (j, l) = (e / 32, e % 32);
        s.q[e] = ((b[at::Q4_K_QS + 32 * (j / 2) + l] >> (4 * (j & 1))) & 0x0f) as i8;
    }
    s
}

/// Decodes a Q5_K super-block.
pub fn decode_q5_k(b: &[u8]) -> Super {
    let mut s = decode_q4_k_scales_only(b);
    // As Q4_K (quants at 48), plus bit j of qh[l] as the fifth bit.
    for e in 0..QK_K {
        let (j, l) = (e / 32, e % 32);
        let low = (b[at::Q5_K_QS + 32 * (j / 2) + l] >> (4 * (j & 1))) & 0x0f;
        let high = (b[at::Q5_K_QH + l] >> j) & 1;
        s.q[e] = (low | (high << 4)) as i8;
    }
    s
}

/// Q4_K's and Q5_K's common head: `d`, `dmin` and the 8 scales and minimums
/// (each covering two sub-blocks of 16); the quants are left zero.
fn decode_q4_k_scales_only(b: &[u8]) -> Super {
    let mut s = Super { d: f16_to_f32(le16(b, 0)), dmin: Some(f16_to_f32(le16(b, 2))), sc: [0; 16], m: [0; 16], q: [0; QK_K] };
    let scales = &b[at::Q4_K_SCALES..at::Q4_K_SCALES + 12];
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, scales);
        s.sc[2 * j] = sc as i32;
        s.sc[2 * j + 1] = sc as i32;
        s.m[2 * j] = m as i32;
        s.m[2 * j + 1] = m as i32;
    }
    s
}

/// Decodes a Q6_K super-block.
pub fn decode_q6_k(b: &[u8]) -> Super {
    let mut s = Super { d: f16_to_f32(le16(b, at::Q6_K_D)), dmin: None, sc: [0; 16], m: [0; 16], q: [0; QK_K] };
    for k in 0..16 {
        s.sc[k] = b[at::Q6_K_SCALES + k] as i8 as i32;
    }
    // Element 128n + 32k + l: nibble k / 2 of ql[64n + 32(k % 2) + l], with
    // bits 2k..2k+2 of qh[32n + l] above it; minus 32.
    for e in 0..QK_K {
        let (n, k, l) = (e / 128, (e % 128) / 32, e % 32);
        let low = (b[64 * n + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0x0f;
        let high = (b[at::Q6_K_QH + 32 * n + l] >> (2 * k)) & 3;
        s.q[e] = (low | (high << 4)) as i8 - 32;
    }
    s
}

/// Whether `ty` is one of this module's 32-element types.
pub(crate) fn decode_small(ty: crate::ggml_type::GgmlType, b: &[u8]) -> Option<Small> {
    use crate::ggml_type::GgmlType as T;
    match ty {
        T::Q5_0 => Some(decode_q5_0(b)),
        T::Q5_1 => Some(decode_q5_1(b)),
        T::IQ4_NL => Some(decode_iq4_nl(b)),
        _ => None,
    }
}

/// Decodes a K-quant super-block of type `ty`, or `None` for another type.
pub(crate) fn decode_super(ty: crate::ggml_type::GgmlType, b: &[u8]) -> Option<Super> {
    use crate::ggml_type::GgmlType as T;
    match ty {
        T::Q2_K => Some(decode_q2_k(b)),
        T::Q3_K => Some(decode_q3_k(b)),
        T::Q4_K => Some(decode_q4_k(b)),
        T::Q5_K => Some(decode_q5_k(b)),
        T::Q6_K => Some(decode_q6_k(b)),
        _ => None,
    }
}

/// BF16 bits to f32 (exact: the high half of the f32).
#[inline]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// f32 to BF16 bits as ggml rounds (`ggml_compute_fp32_to_bf16`): nearest
/// even; a NaN stays a (quiet) NaN.
#[inline]
pub fn f32_to_bf16(f: f32) -> u16 {
    let u = f.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// `f` rounded through BF16, as an f32 (what ggml's BF16 activations hold).
#[inline]
pub fn round_bf16(f: f32) -> f32 {
    bf16_to_f32(f32_to_bf16(f))
}

/// Dequantizes whole blocks of `ty` (one of this module's types) from `src`
/// into `dst`, ggml's `to_float` bit for bit. The caller checked the lengths.
pub(crate) fn dequantize(ty: crate::ggml_type::GgmlType, src: &[u8], dst: &mut [f32]) {
    use crate::ggml_type::GgmlType as T;
    let bb = ty.block_bytes();
    match ty {
        T::BF16 => {
            for (y, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *y = bf16_to_f32(le16(b, 0));
            }
        }
        T::Q5_0 | T::Q5_1 | T::IQ4_NL => {
            for (y, b) in dst.chunks_exact_mut(QK).zip(src.chunks_exact(bb)) {
                let s = decode_small(ty, b).unwrap();
                for (y, &q) in y.iter_mut().zip(&s.q) {
                    *y = match s.m {
                        Some(m) => q as f32 * s.d + m,
                        None => q as f32 * s.d,
                    };
                }
            }
        }
        _ => {
            for (y, b) in dst.chunks_exact_mut(QK_K).zip(src.chunks_exact(bb)) {
                let s = decode_super(ty, b).unwrap();
                for (k, y16) in y.chunks_exact_mut(16).enumerate() {
                    let dl = s.d * s.sc[k] as f32;
                    let ml = s.dmin.map(|dmin| dmin * s.m[k] as f32);
                    for (y, &q) in y16.iter_mut().zip(&s.q[16 * k..16 * (k + 1)]) {
                        *y = match ml {
                            Some(ml) => dl * q as f32 - ml,
                            None => dl * q as f32,
                        };
                    }
                }
            }
        }
    }
}
