//! Tensor element types: llama.cpp's block layouts, half-precision conversion,
//! dequantization, llama.cpp's reference quantizers (used by `pack`) and the
//! activation quantizers the matmuls use.
//!
//! Everything here is scalar, portable and bit-exact with ggml:
//! - [`f16_to_f32`] / [`f32_to_f16`]: exact / round-to-nearest-even.
//! - [`dequantize_row`]: ggml's `dequantize_row_*` / `to_float` for F32, F16,
//!   BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL and the K-quants Q2_K..Q6_K
//!   ([`kquants`]).
//! - [`quantize_row`]: ggml's `quantize_row_*_ref` for F32, F16, Q4_0, Q4_1, Q8_0.
//! - [`activation`]: Q8_0 / Q8_1 activation quantization as ggml's x86 CPU
//!   backend computes it (`vec_dot_type` of Q4_0 and Q8_0 is Q8_0, of Q4_1 is Q8_1).

pub mod activation;
pub mod blocks;
pub mod f16;
pub mod kquants;
pub mod reference;

use core::fmt;

pub use blocks::{BlockQ4_0, BlockQ4_1, BlockQ8_0, BlockQ8_1, QK};
pub use f16::{f16_to_f32, f32_to_f16, round_f16};

use crate::ggml_type::GgmlType;

/// Why a row could not be converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantError {
    /// The engine has no conversion for this type.
    Unsupported(GgmlType),
    /// The row length is not a whole number of the type's blocks.
    RaggedRow { ty: GgmlType, elems: usize },
    /// The byte buffer does not hold exactly one row of `elems` elements.
    WrongByteLength {
        ty: GgmlType,
        elems: usize,
        expected: usize,
        got: usize,
    },
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Unsupported(ty) => write!(
                f,
                "unsupported tensor type {ty}; convert with `cargo axiom pack --type q4_0|q4_1|q8_0`"
            ),
            Self::RaggedRow { ty, elems } => write!(
                f,
                "a row of {elems} elements is not a whole number of {ty} blocks of {}",
                ty.block_elems()
            ),
            Self::WrongByteLength {
                ty,
                elems,
                expected,
                got,
            } => write!(
                f,
                "a {ty} row of {elems} elements takes {expected} bytes, buffer has {got}"
            ),
        }
    }
}

/// Checks that `bytes` holds exactly one row of `elems` elements of `ty`.
fn check_row(ty: GgmlType, elems: usize, bytes: usize) -> Result<(), QuantError> {
    if !ty.is_supported() {
        return Err(QuantError::Unsupported(ty));
    }
    let expected = ty.row_bytes(elems as u64).ok_or(QuantError::RaggedRow { ty, elems })? as usize;
    if expected != bytes {
        return Err(QuantError::WrongByteLength {
            ty,
            elems,
            expected,
            got: bytes,
        });
    }
    Ok(())
}

/// Dequantizes one row: `src` holds `dst.len()` elements of type `ty` in
/// ggml's layout. Results are bit-identical to ggml's `to_float`.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    check_row(ty, dst.len(), src.len())?;
    match ty {
        GgmlType::F32 => {
            for (y, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *y = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => {
            for (y, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *y = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
            }
        }
        GgmlType::Q4_0 => {
            for (y, b) in dst.chunks_exact_mut(QK).zip(src.chunks_exact(BlockQ4_0::BYTES)) {
                let blk = BlockQ4_0::read(b);
                let d = f16_to_f32(blk.d);
                for j in 0..QK / 2 {
                    y[j] = ((blk.qs[j] & 0x0f) as i32 - 8) as f32 * d;
                    y[j + QK / 2] = ((blk.qs[j] >> 4) as i32 - 8) as f32 * d;
                }
            }
        }
        GgmlType::Q4_1 => {
            for (y, b) in dst.chunks_exact_mut(QK).zip(src.chunks_exact(BlockQ4_1::BYTES)) {
                let blk = BlockQ4_1::read(b);
                let d = f16_to_f32(blk.d);
                let m = f16_to_f32(blk.m);
                for j in 0..QK / 2 {
                    y[j] = (blk.qs[j] & 0x0f) as f32 * d + m;
                    y[j + QK / 2] = (blk.qs[j] >> 4) as f32 * d + m;
                }
            }
        }
        GgmlType::Q8_0 => {
            for (y, b) in dst.chunks_exact_mut(QK).zip(src.chunks_exact(BlockQ8_0::BYTES)) {
                let blk = BlockQ8_0::read(b);
                let d = f16_to_f32(blk.d);
                for (yv, &q) in y.iter_mut().zip(&blk.qs) {
                    *yv = q as f32 * d;
                }
            }
        }
        GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::IQ4_NL | GgmlType::BF16 => kquants::dequantize(ty, src, dst),
        GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => kquants::dequantize(ty, src, dst),
        _ => return Err(QuantError::Unsupported(ty)),
    }
    Ok(())
}

/// Quantizes one row of `src.len()` floats into `dst` (exactly one row of
/// type `ty`) with llama.cpp's reference quantizer for that type
/// (`quantize_row_q4_0_ref` etc.; F16 rounds to nearest even; F32 copies).
/// Only F32, F16, Q4_0, Q4_1 and Q8_0 can be written; other types are
/// [`QuantError::Unsupported`].
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    check_row(ty, src.len(), dst.len())?;
    match ty {
        GgmlType::F32 => {
            for (b, &x) in dst.chunks_exact_mut(4).zip(src) {
                b.copy_from_slice(&x.to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for (b, &x) in dst.chunks_exact_mut(2).zip(src) {
                b.copy_from_slice(&f32_to_f16(x).to_le_bytes());
            }
        }
        GgmlType::Q4_0 => {
            for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(BlockQ4_0::BYTES)) {
                reference::quantize_block_q4_0(x.try_into().unwrap()).write(b);
            }
        }
        GgmlType::Q4_1 => {
            for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(BlockQ4_1::BYTES)) {
                reference::quantize_block_q4_1(x.try_into().unwrap()).write(b);
            }
        }
        GgmlType::Q8_0 => {
            for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(BlockQ8_0::BYTES)) {
                reference::quantize_block_q8_0(x.try_into().unwrap()).write(b);
            }
        }
        _ => return Err(QuantError::Unsupported(ty)),
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
