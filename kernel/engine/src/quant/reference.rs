//! llama.cpp's reference quantizers (`quantize_row_q4_0_ref`, `_q4_1_ref`,
//! `_q8_0_ref` in ggml-quants.c), reproduced operation for operation so that
//! `pack` writes blocks bit-identical to llama.cpp's `llama-quantize` with a
//! plain (no importance matrix) quantization.
//!
//! Faithfulness notes: C's `(int8_t)(float)` conversion compiles to `cvttss2si`
//! (truncation; NaN or out of range gives `i32::MIN`) followed by keeping the
//! low byte, which `c_float_to_i8` reproduces; `roundf` rounds half away from
//! zero ([`libm::roundf`]); ggml-base is compiled without FMA contraction, and
//! Rust never contracts, so every product and sum rounds the same way.

use super::blocks::{BlockQ4_0, BlockQ4_1, BlockQ8_0, QK};
use super::f16::f32_to_f16;

/// `(int8_t)x` as x86 C compilers emit it: truncate to i32 (`cvttss2si`, which
/// yields `i32::MIN` for NaN and out-of-range values), then keep the low byte.
#[inline]
pub(crate) fn c_float_to_i8(x: f32) -> i8 {
    let i = if x.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&x) {
        i32::MIN
    } else {
        x as i32
    };
    i as i8
}

/// `MIN(15, (int8_t)v)` stored into a `uint8_t`, as the 4-bit quantizers do.
#[inline]
fn nibble(v: f32) -> u8 {
    let q = c_float_to_i8(v) as i32;
    (if q < 15 { q } else { 15 }) as u8
}

/// One Q4_0 block from 32 floats (`quantize_row_q4_0_ref`).
pub fn quantize_block_q4_0(x: &[f32; QK]) -> BlockQ4_0 {
    // The value of largest magnitude, keeping its sign (first one wins on ties).
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        let a = libm::fabsf(v);
        if amax < a {
            amax = a;
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0u8; QK / 2];
    for j in 0..QK / 2 {
        let x0 = x[j] * id;
        let x1 = x[j + QK / 2] * id;
        qs[j] = nibble(x0 + 8.5) | (nibble(x1 + 8.5) << 4);
    }
    BlockQ4_0 { d: f32_to_f16(d), qs }
}

/// One Q4_1 block from 32 floats (`quantize_row_q4_1_ref`).
pub fn quantize_block_q4_1(x: &[f32; QK]) -> BlockQ4_1 {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0u8; QK / 2];
    for j in 0..QK / 2 {
        let x0 = (x[j] - min) * id;
        let x1 = (x[j + QK / 2] - min) * id;
        qs[j] = nibble(x0 + 0.5) | (nibble(x1 + 0.5) << 4);
    }
    BlockQ4_1 {
        d: f32_to_f16(d),
        m: f32_to_f16(min),
        qs,
    }
}

/// One Q8_0 block from 32 floats (`quantize_row_q8_0_ref`).
pub fn quantize_block_q8_0(x: &[f32; QK]) -> BlockQ8_0 {
    let mut amax = 0.0f32;
    for &v in x {
        let a = libm::fabsf(v);
        amax = if amax > a { amax } else { a }; // C's MAX(amax, a)
    }
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; QK];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = c_float_to_i8(libm::roundf(v * id));
    }
    BlockQ8_0 { d: f32_to_f16(d), qs }
}
