//! The portable reference kernels: the exact arithmetic described in
//! [`super`], written plainly. Every SIMD path must match these bit for bit.

use core::ops::Range;

use super::packed::{read_block, PackedView, MAX_BLOCK_BYTES};
use super::vector::dot_f32_by;
use super::{ActBuf, WeightMatrix};
use crate::ggml_type::GgmlType;
use crate::quant::kquants::{bf16_to_f32, decode_small, decode_super, QK_K};
use crate::quant::{f16_to_f32, BlockQ4_0, BlockQ4_1, BlockQ8_0, QK};

pub(super) fn matmul(w: &WeightMatrix, acts: &ActBuf, rows: Range<usize>, out: &mut [f32]) {
    let n = rows.len();
    let bb = w.ty.block_bytes();
    for r in rows.clone() {
        let row = w.row(r);
        for t in 0..acts.batch {
            out[t * n + (r - rows.start)] = match w.ty {
                GgmlType::F32 => dot_f32_by(
                    acts.cols,
                    |i| f32::from_le_bytes([row[4 * i], row[4 * i + 1], row[4 * i + 2], row[4 * i + 3]]),
                    acts.f(t),
                ),
                GgmlType::F16 => dot_f32_by(
                    acts.cols,
                    |i| f16_to_f32(u16::from_le_bytes([row[2 * i], row[2 * i + 1]])),
                    acts.f(t),
                ),
                GgmlType::BF16 => dot_f32_by(acts.cols, |i| bf16_to_f32(u16::from_le_bytes([row[2 * i], row[2 * i + 1]])), acts.f(t)),
                GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::IQ4_NL => small_dot(w.ty, |b, buf| buf[..bb].copy_from_slice(&row[b * bb..(b + 1) * bb]), acts, t),
                GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => super_dot(w.ty, row, acts, t),
                ty => quant_dot(
                    ty,
                    |b, buf| buf[..bb].copy_from_slice(&row[b * bb..(b + 1) * bb]),
                    acts,
                    t,
                ),
            };
        }
    }
}

pub(super) fn matmul_packed(p: &PackedView, acts: &ActBuf, rows: Range<usize>, out: &mut [f32]) {
    let n = rows.len();
    for r in rows.clone() {
        for t in 0..acts.batch {
            out[t * n + (r - rows.start)] = match p.ty() {
                GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::IQ4_NL => small_dot(p.ty(), |b, buf| read_block(p, r, b, buf), acts, t),
                ty => quant_dot(ty, |b, buf| read_block(p, r, b, buf), acts, t),
            };
        }
    }
}

/// One quantized output: the blocks of a weight row (each copied in ggml's
/// block layout into a buffer by `fetch(b, buf)`) against token `t` of `acts`.
fn quant_dot(ty: GgmlType, mut fetch: impl FnMut(usize, &mut [u8; MAX_BLOCK_BYTES]), acts: &ActBuf, t: usize) -> f32 {
    let (qs, d, s) = (acts.qs(t), acts.d(t), acts.s(t));
    let mut acc = 0.0f32;
    let mut macc = 0.0f32;
    for b in 0..d.len() {
        let mut blk = [0u8; MAX_BLOCK_BYTES];
        fetch(b, &mut blk);
        let a = &qs[b * QK..(b + 1) * QK];
        // Low nibbles are elements 0..16, high nibbles 16..32.
        let nibbles = |q: &[u8; QK / 2], offset: i32| -> i32 {
            (0..QK / 2).map(|j| ((q[j] & 0x0f) as i32 - offset) * a[j] as i32 + ((q[j] >> 4) as i32 - offset) * a[j + QK / 2] as i32).sum()
        };
        let (dw, isum) = match ty {
            GgmlType::Q4_0 => {
                let w = BlockQ4_0::read(&blk);
                (w.d, nibbles(&w.qs, 8))
            }
            GgmlType::Q4_1 => {
                let w = BlockQ4_1::read(&blk);
                macc = libm::fmaf(f16_to_f32(w.m), s[b], macc);
                (w.d, nibbles(&w.qs, 0))
            }
            GgmlType::Q8_0 => {
                let w = BlockQ8_0::read(&blk);
                (w.d, (0..QK).map(|j| w.qs[j] as i32 * a[j] as i32).sum())
            }
            _ => unreachable!("validated weight type"),
        };
        acc = libm::fmaf(f16_to_f32(dw) * d[b], isum as f32, acc);
    }
    if ty == GgmlType::Q4_1 {
        acc + macc
    } else {
        acc
    }
}

/// One output of a 32-element type (Q5_0, IQ4_NL against Q8_0 activations,
/// Q5_1 against Q8_1), in the Q4_0 / Q4_1 sequence: per block `b`,
/// `acc = fma(dw * da, isum, acc)` (and Q5_1's `macc = fma(mw, sa, macc)`),
/// then `acc` (`acc + macc`). `fetch(b, buf)` copies the weight row's block
/// `b` in ggml's layout into `buf`, as for [`quant_dot`].
pub(super) fn small_dot(ty: GgmlType, mut fetch: impl FnMut(usize, &mut [u8; MAX_BLOCK_BYTES]), acts: &ActBuf, t: usize) -> f32 {
    let (qs, d, s) = (acts.qs(t), acts.d(t), acts.s(t));
    let bb = ty.block_bytes();
    let mut acc = 0.0f32;
    let mut macc = 0.0f32;
    let mut has_min = false;
    for b in 0..d.len() {
        let mut blk = [0u8; MAX_BLOCK_BYTES];
        fetch(b, &mut blk);
        let w = decode_small(ty, &blk[..bb]).expect("a 32-element type");
        let a = &qs[b * QK..(b + 1) * QK];
        let isum: i32 = w.q.iter().zip(a).map(|(&q, &a)| q as i32 * a as i32).sum();
        if let Some(m) = w.m {
            has_min = true;
            macc = libm::fmaf(m, s[b], macc);
        }
        acc = libm::fmaf(w.d * d[b], isum as f32, acc);
    }
    if has_min {
        acc + macc
    } else {
        acc
    }
}

/// One output of a K-quant against Q8_K activations (as ggml pairs them).
/// For each super-block (256 columns, activation scale `dk`, sums of 16
/// `bsums`): `isum = sum(sc[e/16] * q[e] * a[e])`, `msum = sum(m[k] *
/// bsums[k])` (exact integers), then `acc = fma(d * dk, isum, acc)` and, for
/// the types with minimums (Q2_K, Q4_K, Q5_K), `macc = fma(dmin * dk, msum,
/// macc)`; the output is `acc - macc` (`acc`).
pub(super) fn super_dot(ty: GgmlType, row: &[u8], acts: &ActBuf, t: usize) -> f32 {
    let (qs, dk, bsums) = (acts.qs(t), acts.dk(t), acts.bsums(t));
    let bb = ty.block_bytes();
    let mut acc = 0.0f32;
    let mut macc = 0.0f32;
    let mut has_min = false;
    for (sb, blk) in row.chunks_exact(bb).enumerate() {
        let w = decode_super(ty, blk).expect("a K-quant");
        let a = &qs[sb * QK_K..(sb + 1) * QK_K];
        let isum: i32 = (0..QK_K).map(|e| w.sc[e / 16] * w.q[e] as i32 * a[e] as i32).sum();
        let msum: i32 = (0..16).map(|k| w.m[k] * bsums[16 * sb + k]).sum();
        acc = libm::fmaf(w.d * dk[sb], isum as f32, acc);
        if let Some(dmin) = w.dmin {
            has_min = true;
            macc = libm::fmaf(dmin * dk[sb], msum as f32, macc);
        }
    }
    if has_min {
        acc - macc
    } else {
        acc
    }
}
