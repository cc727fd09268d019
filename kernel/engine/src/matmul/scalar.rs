//! The portable reference kernels: the exact arithmetic described in
//! [`super`], written plainly. Every SIMD path must match these bit for bit.

use core::ops::Range;

use super::vector::dot_f32_by;
use super::{ActBuf, WeightMatrix};
use crate::ggml_type::GgmlType;
use crate::quant::{f16_to_f32, BlockQ4_0, BlockQ4_1, BlockQ8_0, QK};

pub(super) fn matmul(w: &WeightMatrix, acts: &ActBuf, rows: Range<usize>, out: &mut [f32]) {
    let n = rows.len();
    for r in rows.clone() {
        let row = w.row(r);
        for t in 0..acts.batch {
            out[t * n + (r - rows.start)] = row_dot(w.ty, row, acts, t);
        }
    }
}

/// One output: weight row `row` (ggml bytes) against token `t` of `acts`.
pub(super) fn row_dot(ty: GgmlType, row: &[u8], acts: &ActBuf, t: usize) -> f32 {
    match ty {
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
        GgmlType::Q4_0 => {
            let (qs, d) = (acts.qs(t), acts.d(t));
            let mut acc = 0.0f32;
            for (b, blk) in row.chunks_exact(BlockQ4_0::BYTES).enumerate() {
                let blk = BlockQ4_0::read(blk);
                let a = &qs[b * QK..(b + 1) * QK];
                let mut isum = 0i32;
                for j in 0..QK / 2 {
                    isum += ((blk.qs[j] & 0x0f) as i32 - 8) * a[j] as i32;
                    isum += ((blk.qs[j] >> 4) as i32 - 8) * a[j + QK / 2] as i32;
                }
                acc = libm::fmaf(f16_to_f32(blk.d) * d[b], isum as f32, acc);
            }
            acc
        }
        GgmlType::Q4_1 => {
            let (qs, d, s) = (acts.qs(t), acts.d(t), acts.s(t));
            let mut acc = 0.0f32;
            let mut macc = 0.0f32;
            for (b, blk) in row.chunks_exact(BlockQ4_1::BYTES).enumerate() {
                let blk = BlockQ4_1::read(blk);
                let a = &qs[b * QK..(b + 1) * QK];
                let mut isum = 0i32;
                for j in 0..QK / 2 {
                    isum += (blk.qs[j] & 0x0f) as i32 * a[j] as i32;
                    isum += (blk.qs[j] >> 4) as i32 * a[j + QK / 2] as i32;
                }
                acc = libm::fmaf(f16_to_f32(blk.d) * d[b], isum as f32, acc);
                macc = libm::fmaf(f16_to_f32(blk.m), s[b], macc);
            }
            acc + macc
        }
        GgmlType::Q8_0 => {
            let (qs, d) = (acts.qs(t), acts.d(t));
            let mut acc = 0.0f32;
            for (b, blk) in row.chunks_exact(BlockQ8_0::BYTES).enumerate() {
                let blk = BlockQ8_0::read(blk);
                let a = &qs[b * QK..(b + 1) * QK];
                let isum: i32 = blk.qs.iter().zip(a).map(|(&w, &x)| w as i32 * x as i32).sum();
                acc = libm::fmaf(f16_to_f32(blk.d) * d[b], isum as f32, acc);
            }
            acc
        }
        _ => unreachable!("validated weight type"),
    }
}
