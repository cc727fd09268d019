//! The portable reference kernels: the exact arithmetic described in
//! [`super`], written plainly. Every SIMD path must match these bit for bit.

use core::ops::Range;

use super::packed::{read_block, PackedView};
use super::vector::dot_f32_by;
use super::{ActBuf, WeightMatrix};
use crate::ggml_type::GgmlType;
use crate::quant::{f16_to_f32, QK};

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
fn quant_dot(ty: GgmlType, mut fetch: impl FnMut(usize, &mut [u8; 34]), acts: &ActBuf, t: usize) -> f32 {
    let (qs, d, s) = (acts.qs(t), acts.d(t), acts.s(t));
    let mut acc = 0.0f32;
    let mut macc = 0.0f32;
    for b in 0..d.len() {
        let mut blk = [0u8; 34];
        fetch(b, &mut blk);
        let a = &qs[b * QK..(b + 1) * QK];
        let dw = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
        let isum: i32 = match ty {
            GgmlType::Q4_0 => (0..QK / 2)
                .map(|j| {
                    ((blk[2 + j] & 0x0f) as i32 - 8) * a[j] as i32
                        + ((blk[2 + j] >> 4) as i32 - 8) * a[j + QK / 2] as i32
                })
                .sum(),
            GgmlType::Q4_1 => (0..QK / 2)
                .map(|j| (blk[4 + j] & 0x0f) as i32 * a[j] as i32 + (blk[4 + j] >> 4) as i32 * a[j + QK / 2] as i32)
                .sum(),
            GgmlType::Q8_0 => (0..QK).map(|j| blk[2 + j] as i8 as i32 * a[j] as i32).sum(),
            _ => unreachable!("validated weight type"),
        };
        acc = libm::fmaf(dw * d[b], isum as f32, acc);
        if ty == GgmlType::Q4_1 {
            let mw = f16_to_f32(u16::from_le_bytes([blk[2], blk[3]]));
            macc = libm::fmaf(mw, s[b], macc);
        }
    }
    if ty == GgmlType::Q4_1 {
        acc + macc
    } else {
        acc
    }
}
