//! Activation quantization to Q8_0 / Q8_1, computed exactly as ggml's x86 CPU
//! backend does it at run time (`quantize_row_q8_0` / `quantize_row_q8_1` in
//! ggml-cpu/arch/x86/quants.c), which differs from the reference quantizer:
//! the inverse scale is `127 / amax` (not `1 / (amax / 127)`) and rounding is
//! to nearest *even* (`vroundps`), not half away from zero.
//!
//! Every ISA path of the engine quantizes activations with [`quantize_block_q8`]
//! (or SIMD code proven equal to it in tests), so the integer quants a matmul
//! sees never depend on the ISA.

use super::blocks::{BlockQ8_0, BlockQ8_1, QK};
use super::f16::f32_to_f16;

/// A quantized activation block before its scales are rounded to f16.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Q8Block {
    /// The scale `amax / 127` in full precision (ggml stores it as f16).
    pub d: f32,
    /// The sum of the quants (for Q8_1's `s` and the Q4_0 offset trick).
    pub sum: i32,
    /// The quants, in `-127..=127`.
    pub qs: [i8; QK],
}

/// Quantizes 32 floats like ggml's AVX2 `quantize_row_q8_0/1` inner loop.
#[inline]
pub fn quantize_block_q8(x: &[f32; QK]) -> Q8Block {
    // Max of |x|; the order of a max does not matter (NaN aside: like maxps
    // we then propagate whichever operand the comparison picks).
    let mut amax = 0.0f32;
    for &v in x {
        let a = libm::fabsf(v);
        amax = if amax > a { amax } else { a };
    }
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut qs = [0i8; QK];
    let mut sum = 0i32;
    for (q, &v) in qs.iter_mut().zip(x) {
        // vroundps (nearest even) then vcvtps2dq and saturating packs.
        let r = libm::rintf(v * id);
        let i = if r.is_nan() { i32::MIN } else { r as i32 };
        sum = sum.wrapping_add(i);
        *q = i.clamp(-128, 127) as i8;
    }
    Q8Block { d, sum, qs }
}

/// Activations to Q8_0 blocks in ggml's layout (for Q4_0 and Q8_0 weights).
///
/// `x.len()` must be a multiple of 32 and `dst.len()` must be
/// `x.len() / 32 * 34`; panics otherwise.
pub fn quantize_row_q8_0(x: &[f32], dst: &mut [u8]) {
    assert!(x.len().is_multiple_of(QK) && dst.len() == x.len() / QK * BlockQ8_0::BYTES);
    for (xb, out) in x.chunks_exact(QK).zip(dst.chunks_exact_mut(BlockQ8_0::BYTES)) {
        let q = quantize_block_q8(xb.try_into().unwrap());
        BlockQ8_0 {
            d: f32_to_f16(q.d),
            qs: q.qs,
        }
        .write(out);
    }
}

/// Activations to Q8_1 blocks in ggml's layout (for Q4_1 weights); `s` is
/// `f16(d * sum(qs))` with the unrounded `d`, as ggml computes it.
///
/// `x.len()` must be a multiple of 32 and `dst.len()` must be
/// `x.len() / 32 * 36`; panics otherwise.
pub fn quantize_row_q8_1(x: &[f32], dst: &mut [u8]) {
    assert!(x.len().is_multiple_of(QK) && dst.len() == x.len() / QK * BlockQ8_1::BYTES);
    for (xb, out) in x.chunks_exact(QK).zip(dst.chunks_exact_mut(BlockQ8_1::BYTES)) {
        let q = quantize_block_q8(xb.try_into().unwrap());
        let s = f32_to_f16(q.d * q.sum as f32);
        BlockQ8_1 {
            d: f32_to_f16(q.d),
            s,
            qs: q.qs,
        }
        .write(out);
    }
}

/// Elements of a Q8_K activation block (a K-quant super-block).
pub const QK_K: usize = 256;

/// A Q8_K activation block: ggml's `block_q8_K` (f32 scale, 256 quants, the
/// sums of each 16).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Q8KBlock {
    /// The scale `1 / iscale` (f32, not rounded to f16).
    pub d: f32,
    /// The quants, in `-127..=127`.
    pub qs: [i8; QK_K],
    /// Sum of each 16 quants.
    pub bsums: [i32; 16],
}

/// ggml's `nearest_int`: round to nearest even through the 1.5 * 2^23 trick
/// (valid for |v| <= 2^22, which |127 * x / max| is).
#[inline]
fn nearest_int(v: f32) -> i32 {
    let i = (v + 12_582_912.0f32).to_bits() as i32;
    (i & 0x007f_ffff) - 0x0040_0000
}

/// Quantizes 256 floats like ggml's `quantize_row_q8_K_ref` (what the x86
/// CPU backend runs for the K-quants' activations): the signed value of
/// largest magnitude `max`, `iscale = -127 / max`, `q = min(127,
/// nearest_int(iscale * x))`, `d = 1 / iscale`.
pub fn quantize_block_q8_k(x: &[f32; QK_K]) -> Q8KBlock {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        let a = libm::fabsf(v);
        if a > amax {
            amax = a;
            max = v;
        }
    }
    let mut b = Q8KBlock { d: 0.0, qs: [0; QK_K], bsums: [0; 16] };
    if amax == 0.0 {
        return b;
    }
    let iscale = -127.0f32 / max;
    for (q, &v) in b.qs.iter_mut().zip(x) {
        *q = nearest_int(iscale * v).min(127) as i8;
    }
    for (k, s) in b.bsums.iter_mut().enumerate() {
        *s = b.qs[16 * k..16 * (k + 1)].iter().map(|&q| q as i32).sum();
    }
    b.d = 1.0 / iscale;
    b
}
