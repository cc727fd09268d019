//! The element-wise pieces of the forward pass: RMSNorm, RoPE, softmax,
//! SiLU and a fast `exp`. Plain Rust with a fixed operation order, so they
//! give the same bits on every ISA, in the kernel and on the host. The hot
//! ones run through [`Kernels::vectorized`], which compiles them for AVX2 on
//! the SIMD paths: the loops vectorize, the results stay the same.

use crate::matmul::Kernels;
use crate::model::{F32Vector, RopeLayout};

/// `out = x / rms(x) * w`, as ggml's `rms_norm` then `mul`: the sum of
/// squares in f64, the mean in f32.
pub fn rmsnorm(out: &mut [f32], x: &[f32], w: F32Vector<'_>, eps: f32) {
    debug_assert_eq!(out.len(), x.len());
    let scale = rms_scale(x, eps);
    for ((o, &v), wv) in out.iter_mut().zip(x).zip(w.iter()) {
        *o = (v * scale) * wv;
    }
}

/// [`rmsnorm`] of `x` into itself (the per-head Q/K norms).
pub fn rmsnorm_in_place(x: &mut [f32], w: F32Vector<'_>, eps: f32) {
    let scale = rms_scale(x, eps);
    for (v, wv) in x.iter_mut().zip(w.iter()) {
        *v = (*v * scale) * wv;
    }
}

/// `1 / sqrt(mean(x²) + eps)`.
fn rms_scale(x: &[f32], eps: f32) -> f32 {
    // Four f64 accumulators: independent chains, and f64 keeps the
    // reordering far below f32 rounding.
    let mut acc = [0.0f64; 4];
    let mut chunks = x.chunks_exact(4);
    for c in &mut chunks {
        for k in 0..4 {
            acc[k] += (c[k] * c[k]) as f64;
        }
    }
    let mut sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for &v in chunks.remainder() {
        sum += (v * v) as f64;
    }
    let mean = (sum / x.len() as f64) as f32;
    1.0 / libm::sqrtf(mean + eps)
}

/// Rotates one head in place by the angles of one position (`table`:
/// `n_rot / 2` pairs `(cos, sin)`).
pub fn rope(head: &mut [f32], table: &[f32], layout: RopeLayout) {
    let half = table.len() / 2;
    match layout {
        RopeLayout::Adjacent => {
            for i in 0..half {
                let (c, s) = (table[2 * i], table[2 * i + 1]);
                let (x0, x1) = (head[2 * i], head[2 * i + 1]);
                head[2 * i] = x0 * c - x1 * s;
                head[2 * i + 1] = x0 * s + x1 * c;
            }
        }
        RopeLayout::NeoX => {
            for i in 0..half {
                let (c, s) = (table[2 * i], table[2 * i + 1]);
                let (x0, x1) = (head[i], head[i + half]);
                head[i] = x0 * c - x1 * s;
                head[i + half] = x0 * s + x1 * c;
            }
        }
    }
}

/// `scores[t] = Σ_d q[d] · keys[d · stride + t]` for every `t <
/// scores.len()` (a multiple of 8): one query against the transposed keys of
/// all positions. Each score sums its products in a fixed order (four
/// partial sums over `d mod 4`, then `(s0 + s1) + (s2 + s3)`), with separate
/// multiply and add, so the portable and the AVX2 build give the same bits.
pub fn attention_scores(k: &Kernels, q: &[f32], keys: &[f32], stride: usize, scores: &mut [f32]) {
    assert!(scores.len().is_multiple_of(8) && scores.len() <= stride && keys.len() >= (q.len().max(1) - 1) * stride + scores.len());
    k.vectorized(|| scores_impl(q, keys, stride, scores))
}

#[inline(always)]
fn scores_impl(q: &[f32], keys: &[f32], stride: usize, scores: &mut [f32]) {
    let row = |d: usize, t0: usize| -> &[f32; 8] { keys[d * stride + t0..d * stride + t0 + 8].try_into().unwrap() };
    for (b, out) in scores.chunks_exact_mut(8).enumerate() {
        let t0 = b * 8;
        // Four named partial sums (over d mod 4) so they live in registers.
        let (mut a0, mut a1, mut a2, mut a3) = ([0.0f32; 8], [0.0f32; 8], [0.0f32; 8], [0.0f32; 8]);
        let mut d = 0;
        while d + 4 <= q.len() {
            let (k0, k1, k2, k3) = (row(d, t0), row(d + 1, t0), row(d + 2, t0), row(d + 3, t0));
            for j in 0..8 {
                a0[j] += q[d] * k0[j];
                a1[j] += q[d + 1] * k1[j];
                a2[j] += q[d + 2] * k2[j];
                a3[j] += q[d + 3] * k3[j];
            }
            d += 4;
        }
        for (dd, acc) in (d..q.len()).zip([&mut a0, &mut a1, &mut a2]) {
            let k = row(dd, t0);
            for j in 0..8 {
                acc[j] += q[dd] * k[j];
            }
        }
        for j in 0..8 {
            out[j] = (a0[j] + a1[j]) + (a2[j] + a3[j]);
        }
    }
}

/// `out[i] = Σ_t probs[t] · values[t · row + i]`: the probability-weighted
/// sum of the value vectors (`out.len() <= row`), summed over `t` in order,
/// with separate multiply and add (same bits portable and AVX2).
pub fn attention_values(k: &Kernels, probs: &[f32], values: &[f32], row: usize, out: &mut [f32]) {
    assert!(out.len() <= row && values.len() >= probs.len().saturating_sub(1) * row + out.len());
    k.vectorized(|| values_impl(probs, values, row, out))
}

#[inline(always)]
fn values_impl(probs: &[f32], values: &[f32], row: usize, out: &mut [f32]) {
    // 64 outputs at a time stay in registers across all positions.
    for (c, chunk) in out.chunks_mut(64).enumerate() {
        let base = c * 64;
        if chunk.len() == 64 {
            let mut acc = [0.0f32; 64];
            for (t, &a) in probs.iter().enumerate() {
                let v: &[f32; 64] = values[t * row + base..t * row + base + 64].try_into().unwrap();
                for i in 0..64 {
                    acc[i] += a * v[i];
                }
            }
            chunk.copy_from_slice(&acc);
        } else {
            chunk.fill(0.0);
            for (t, &a) in probs.iter().enumerate() {
                for (o, &v) in chunk.iter_mut().zip(&values[t * row + base..]) {
                    *o += a * v;
                }
            }
        }
    }
}

/// In-place softmax: `exp(x - max)` (the max and the sum in 8 lanes, the
/// sum in f64 as ggml keeps it, combined in a fixed order), then scaled by
/// 1/sum. Portable and AVX2 builds give the same bits.
pub fn softmax(k: &Kernels, x: &mut [f32]) {
    k.vectorized(|| softmax_impl(x))
}

#[inline(always)]
fn softmax_impl(x: &mut [f32]) {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            lanes[j] = if c[j] > lanes[j] { c[j] } else { lanes[j] };
        }
    }
    let mut max = lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for &v in chunks.remainder() {
        max = max.max(v);
    }
    // Separate simple loops: each vectorizes on its own.
    for v in x.iter_mut() {
        *v = exp(*v - max);
    }
    let mut sums = [0.0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            sums[j] += c[j] as f64;
        }
    }
    let mut sum = ((sums[0] + sums[4]) + (sums[2] + sums[6])) + ((sums[1] + sums[5]) + (sums[3] + sums[7]));
    for &v in chunks.remainder() {
        sum += v as f64;
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `silu(g) * u`, the SwiGLU gate, element-wise into `g` (portable and
/// AVX2 builds give the same bits).
pub fn swiglu(k: &Kernels, g: &mut [f32], u: &[f32]) {
    k.vectorized(|| swiglu_impl(g, u))
}

#[inline(always)]
fn swiglu_impl(g: &mut [f32], u: &[f32]) {
    for (gv, &uv) in g.iter_mut().zip(u) {
        let x = *gv;
        *gv = x / (1.0 + exp(-x)) * uv;
    }
}

/// `gelu(g) * u`, the GeGLU gate (Gemma), element-wise into `g`, with
/// GELU's tanh approximation `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`
/// written as `x · sigmoid(2·√(2/π)·x·(1 + 0.044715·x²))` (the same function,
/// without tanh's cancellation; portable and AVX2 builds give the same bits).
pub fn geglu(k: &Kernels, g: &mut [f32], u: &[f32]) {
    k.vectorized(|| geglu_impl(g, u))
}

#[inline(always)]
fn geglu_impl(g: &mut [f32], u: &[f32]) {
    const TWO_SQRT_2_OVER_PI: f32 = 1.595_769; // 2·√(2/π), rounded to f32
    const COEF_A: f32 = 0.044_715;
    for (gv, &uv) in g.iter_mut().zip(u) {
        let x = *gv;
        let y = TWO_SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x);
        *gv = x / (1.0 + exp(-y)) * uv;
    }
}

/// `e^x` to about 1 ulp for `x` in [-87, 88] (0 below, clamped above): range
/// reduction by ln 2 and Cephes' degree-6 polynomial. Branch-free, so loops
/// over it vectorize; much faster than `libm::expf` and exact enough for
/// softmax and SiLU.
#[inline]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let underflow = x < -87.336_55;
    let x = x.clamp(-87.336_55, 88.37);
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let ni = t.to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let z = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r + 0.5;
    let y = p * z + r + 1.0;
    let scale = f32::from_bits(((ni + 127) as u32) << 23);
    if underflow {
        0.0
    } else {
        y * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matmul::Isa;

    #[test]
    fn exp_is_close_to_libm() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = libm::exp(x as f64);
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp(-200.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(100.0).is_finite());
    }

    /// The attention helpers with `k`, against naive f64 sums; returns the
    /// scores and values for comparing paths bit for bit.
    fn attention_helpers(k: Kernels) -> ([f32; 40], [f32; 70]) {
        let (hd, stride, n) = (64, 40, 37);
        let q: alloc::vec::Vec<f32> = (0..hd).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1).collect();
        let keys: alloc::vec::Vec<f32> = (0..hd * stride).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.07).collect();
        let values: alloc::vec::Vec<f32> = (0..n * 72).map(|i| ((i * 3 % 17) as f32 - 8.0) * 0.05).collect();
        let probs: alloc::vec::Vec<f32> = (0..n).map(|i| (i as f32 + 1.0) / 700.0).collect();
        let isa = k.isa();
        let mut scores = [0.0f32; 40];
        attention_scores(&k, &q, &keys, stride, &mut scores);
        for (t, score) in scores.iter().enumerate() {
            let want: f64 = (0..hd).map(|d| q[d] as f64 * keys[d * stride + t] as f64).sum();
            assert!((*score as f64 - want).abs() < 1e-4, "{isa} score {t}");
        }
        let mut out = [0.0f32; 70];
        attention_values(&k, &probs, &values, 72, &mut out);
        for (i, value) in out.iter().enumerate() {
            let want: f64 = (0..n).map(|t| probs[t] as f64 * values[t * 72 + i] as f64).sum();
            assert!((*value as f64 - want).abs() < 1e-5, "{isa} value {i}");
        }
        (scores, out)
    }

    #[test]
    fn attention_helpers_match_naive_sums() {
        attention_helpers(Kernels::for_isa(Isa::Scalar).unwrap());
    }

    /// The AVX2 compile (every SIMD path runs it) gives the portable bits.
    #[test]
    #[cfg_attr(not(axiom_cpu_avx2), ignore = "this machine lacks AVX2+FMA+F16C")]
    fn attention_helpers_compiled_for_avx2_give_the_same_bits() {
        let portable = attention_helpers(Kernels::for_isa(Isa::Scalar).unwrap());
        let avx2 = attention_helpers(crate::matmul::tests::isa_kernels(Isa::Avx2));
        assert!(avx2.0.iter().zip(&portable.0).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(avx2.1.iter().zip(&portable.1).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn softmax_sums_to_one() {
        let k = Kernels::for_isa(Isa::Scalar).unwrap();
        let mut v = [1.0f32, 2.0, 3.0, -50.0];
        softmax(&k, &mut v);
        let s: f32 = v.iter().sum();
        assert!((s - 1.0).abs() < 1e-6);
        assert!(v[2] > v[1] && v[1] > v[0] && v[3] < 1e-20);
    }

    #[test]
    fn rope_layouts_rotate_the_right_pairs() {
        // 4 dims, angles 90 degrees for pair 0 and 0 for pair 1.
        let table = [0.0f32, 1.0, 1.0, 0.0];
        let mut h = [1.0f32, 2.0, 3.0, 4.0];
        rope(&mut h, &table, RopeLayout::Adjacent);
        assert_eq!(h, [-2.0, 1.0, 3.0, 4.0]);
        let mut h = [1.0f32, 2.0, 3.0, 4.0];
        rope(&mut h, &table, RopeLayout::NeoX);
        // pairs (0, 2) rotated by 90 degrees, (1, 3) unchanged
        assert_eq!(h, [-3.0, 2.0, 1.0, 4.0]);
    }
}
