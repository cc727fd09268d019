//! The portable reference kernels: the exact arithmetic described in
//! [`super`], written plainly. Every SIMD path must match these bit for bit.

use core::ops::Range;

use super::packed::{read_block, PackedView, MAX_BLOCK_BYTES};
use super::vector::dot_f32_by;
use super::{ActBuf, WeightMatrix};
use crate::ggml_type::GgmlType;
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
            out[t * n + (r - rows.start)] = quant_dot(p.ty(), |b, buf| read_block(p, r, b, buf), acts, t);
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
