//! Portable float vector helpers, and the definition of the summation order
//! the SIMD versions in [`super::Kernels`] reproduce bit for bit.
//!
//! Fused multiply-adds go through [`libm::fmaf`] (correctly rounded, like the
//! `vfmadd` instructions), so this scalar code and the AVX2 code agree exactly.

/// Horizontal sum of 8 lanes in the order AVX code reduces a YMM register:
/// `((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7))`.
#[inline]
pub fn hsum8(v: &[f32; 8]) -> f32 {
    let q = [v[0] + v[4], v[1] + v[5], v[2] + v[6], v[3] + v[7]];
    (q[0] + q[2]) + (q[1] + q[3])
}

/// Dot product in the engine's fixed order: four 8-lane accumulators over
/// 32-element chunks, combined lane-wise as `(acc0+acc1)+(acc2+acc3)`, then
/// further 8-element chunks into that, [`hsum8`], then the last `len % 8`
/// elements one by one. Every product-sum is one `fma`.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    dot_f32_by(a.len(), |i| a[i], b)
}

/// [`dot_f32`] where the first operand is produced per index (F16 weights).
#[inline]
pub(crate) fn dot_f32_by(n: usize, a: impl Fn(usize) -> f32, b: &[f32]) -> f32 {
    assert_eq!(b.len(), n);
    let mut acc = [[0.0f32; 8]; 4];
    let mut i = 0;
    while i + 32 <= n {
        for (k, lanes) in acc.iter_mut().enumerate() {
            for (l, lane) in lanes.iter_mut().enumerate() {
                let j = i + 8 * k + l;
                *lane = libm::fmaf(a(j), b[j], *lane);
            }
        }
        i += 32;
    }
    let mut v = [0.0f32; 8];
    for l in 0..8 {
        v[l] = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
    }
    while i + 8 <= n {
        for (l, lane) in v.iter_mut().enumerate() {
            *lane = libm::fmaf(a(i + l), b[i + l], *lane);
        }
        i += 8;
    }
    let mut s = hsum8(&v);
    while i < n {
        s = libm::fmaf(a(i), b[i], s);
        i += 1;
    }
    s
}

/// `y[i] = fma(a, x[i], y[i])`.
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    assert_eq!(y.len(), x.len());
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv = libm::fmaf(a, xv, *yv);
    }
}

/// `y[i] *= a`.
pub fn scale(y: &mut [f32], a: f32) {
    for v in y {
        *v *= a;
    }
}

/// `y[i] += x[i]`.
pub fn add(y: &mut [f32], x: &[f32]) {
    assert_eq!(y.len(), x.len());
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv += xv;
    }
}

/// `y[i] *= x[i]`.
pub fn mul(y: &mut [f32], x: &[f32]) {
    assert_eq!(y.len(), x.len());
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv *= xv;
    }
}

/// `out[d] = Σ_t probs[t] · rows[t][d]` for rows of `out.len()` floats, over
/// `t` in order, one `fma` per product, starting from 0 (attention's
/// probability-weighted sum of a tile of values). Each `d` is its own
/// chain, so any vector width computes the same bits.
pub fn weighted_sum(probs: &[f32], rows: &[f32], out: &mut [f32]) {
    let hd = out.len();
    assert!(hd > 0 && rows.len() == probs.len() * hd);
    out.fill(0.0);
    for (&p, row) in probs.iter().zip(rows.chunks_exact(hd)) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o = libm::fmaf(p, v, *o);
        }
    }
}

/// `out[j] = Σ_d q[d] · kt[d · stride + cols.start + j]` for `j <
/// cols.len()`: one query against keys stored transposed (a dimension's
/// values for consecutive positions are contiguous), each score one `fma`
/// chain over `d` in order from 0. Lanes are positions, so any vector width
/// computes the same bits.
pub fn dots_t(q: &[f32], kt: &[f32], stride: usize, cols: core::ops::Range<usize>, out: &mut [f32]) {
    assert!(cols.len() == out.len() && cols.end <= stride && kt.len() >= (q.len().max(1) - 1) * stride + cols.end);
    out.fill(0.0);
    for (d, &qd) in q.iter().enumerate() {
        let row = &kt[d * stride + cols.start..d * stride + cols.end];
        for (o, &k) in out.iter_mut().zip(row) {
            *o = libm::fmaf(qd, k, *o);
        }
    }
}

/// One little-endian f16 of `bytes` at element `i`, widened.
fn half_at(bytes: &[u8], i: usize) -> f32 {
    crate::quant::f16_to_f32(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]))
}

/// [`dots_t`] with the keys as f16 bytes (an f16 cache block): the same
/// bits as decoding them first.
pub fn dots_t_f16(q: &[f32], kt: &[u8], stride: usize, cols: core::ops::Range<usize>, out: &mut [f32]) {
    assert!(cols.len() == out.len() && cols.end <= stride && kt.len() / 2 >= (q.len().max(1) - 1) * stride + cols.end);
    out.fill(0.0);
    for (d, &qd) in q.iter().enumerate() {
        for (j, o) in out.iter_mut().enumerate() {
            *o = libm::fmaf(qd, half_at(kt, d * stride + cols.start + j), *o);
        }
    }
}

/// [`weighted_sum`] with the rows as f16 bytes: the same bits as decoding
/// them first.
pub fn weighted_sum_f16(probs: &[f32], rows: &[u8], out: &mut [f32]) {
    let hd = out.len();
    assert!(hd > 0 && rows.len() == probs.len() * hd * 2);
    out.fill(0.0);
    for (t, &p) in probs.iter().enumerate() {
        for (d, o) in out.iter_mut().enumerate() {
            *o = libm::fmaf(p, half_at(rows, t * hd + d), *o);
        }
    }
}
