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

/// Attention softmax over one chunk, in place and unnormalized: `s *=
/// scale`, `m = max s`, `s = exp(s − m)`; returns `(m, Σ s)`, the sum in 8
/// lanes (element `i` into lane `i mod 8`, in order) combined as
/// `((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))`. Element-wise with a fixed
/// order: the same bits portable and vectorized.
#[inline(always)]
pub fn exp_normalize(s: &mut [f32], scale: f32) -> (f32, f32) {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = s.chunks_exact_mut(8);
    for c in &mut chunks {
        for j in 0..8 {
            c[j] *= scale;
            lanes[j] = if c[j] > lanes[j] { c[j] } else { lanes[j] };
        }
    }
    let mut m = lanes.iter().copied().fold(f32::NEG_INFINITY, |a, b| if b > a { b } else { a });
    for v in chunks.into_remainder() {
        *v *= scale;
        m = if *v > m { *v } else { m };
    }
    for v in s.iter_mut() {
        *v = exp(*v - m);
    }
    let mut sums = [0.0f32; 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            sums[j] += c[j];
        }
    }
    for (j, &v) in chunks.remainder().iter().enumerate() {
        sums[j] += v;
    }
    let l = ((sums[0] + sums[4]) + (sums[2] + sums[6])) + ((sums[1] + sums[5]) + (sums[3] + sums[7]));
    (m, l)
}

/// Merges the chunk partial `part = [m, l, o...]` into `run` (same layout,
/// not empty): `m' = max`, `a = e^(m_run − m')`, `b = e^(m_part − m')`,
/// `l = l_run·a + l_part·b`, `o = o_run·a + o_part·b` (separate multiply
/// and add: the same bits portable and vectorized).
#[inline(always)]
pub fn merge_partial(run: &mut [f32], part: &[f32]) {
    let m = if part[0] > run[0] { part[0] } else { run[0] };
    let (a, b) = (exp(run[0] - m), exp(part[0] - m));
    run[0] = m;
    run[1] = run[1] * a + part[1] * b;
    for (o, &p) in run[2..].iter_mut().zip(&part[2..]) {
        *o = *o * a + p * b;
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

    #[test]
    fn chunk_softmax_and_merge_match_one_softmax() {
        // Two chunks merged give the softmax of their concatenation.
        let s: alloc::vec::Vec<f32> = (0..40).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.9).collect();
        let v: alloc::vec::Vec<f32> = (0..40).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.3).collect();
        let partial = |range: core::ops::Range<usize>| {
            let mut p = s[range.clone()].to_vec();
            let (m, l) = exp_normalize(&mut p, 0.5);
            let o: f32 = p.iter().zip(&v[range]).map(|(a, b)| a * b).sum();
            [m, l, o]
        };
        let mut run = partial(0..25);
        merge_partial(&mut run, &partial(25..40));
        let max = s.iter().map(|x| *x as f64 * 0.5).fold(f64::MIN, f64::max);
        let e: alloc::vec::Vec<f64> = s.iter().map(|x| libm::exp(*x as f64 * 0.5 - max)).collect();
        let want = e.iter().zip(&v).map(|(a, b)| a * *b as f64).sum::<f64>() / e.iter().sum::<f64>();
        assert!(((run[2] / run[1]) as f64 - want).abs() < 1e-5, "{} vs {want}", run[2] / run[1]);
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
