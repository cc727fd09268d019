//! The forward pass as a readable specification: what [`crate::forward`]
//! computes, written out naively in f64, one position after another, with no
//! tiles, no barriers, no quantized activations and no cache layout.
//!
//! The engine's tests compare the forward pass against [`logits`] on models
//! with f32 weights (so that only the rounding differs), for every
//! architecture option: adjacent and NeoX RoPE, partial rotary dimensions,
//! linear RoPE scaling, grouped K/V heads, Q/K/V biases, tied and untied
//! output heads, per-head Q/K norms (Qwen 3, Gemma 3), and Gemma 3's scaled
//! embeddings, post-norms, GELU FFN, sliding-window layers with their own
//! RoPE base. It is far too slow for anything else.

use alloc::vec;
use alloc::vec::Vec;

use crate::matmul::Matrix;
use crate::model::{F32Vector, FfnActivation, LayerSource, Model, ModelConfig, RopeConfig, RopeLayout};

/// The logits of every position of `tokens` (a fresh context, positions
/// `0..tokens.len()`), in f64. Panics on a token id outside the vocabulary.
pub fn logits(model: &Model<'_>, layers: &dyn LayerSource, tokens: &[u32]) -> Vec<Vec<f64>> {
    let c = &model.config;
    let eps = c.rms_eps as f64;
    let embeddings = Dense::from(model.globals.token_embd);
    let embd_scale = c.embd_scale as f64;
    let mut xs: Vec<Vec<f64>> = tokens.iter().map(|&t| embeddings.row(t as usize).iter().map(|v| v * embd_scale).collect()).collect();

    for l in 0..c.n_layers {
        let w = layers.layer(l);
        let (wq, wk, wv, wo) = (Dense::from(w.wq), Dense::from(w.wk), Dense::from(w.wv), Dense::from(w.wo));
        let (w_gate, w_up, w_down) = (Dense::from(w.w_gate), Dense::from(w.w_up), Dense::from(w.w_down));
        // This layer's keys and values of every position so far.
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        for (p, x) in xs.iter_mut().enumerate() {
            // Attention.
            let xb = rmsnorm(x, w.attn_norm, eps);
            let (mut q, mut k, mut v) = (wq.times(&xb), wk.times(&xb), wv.times(&xb));
            add(&mut q, w.bq);
            add(&mut k, w.bk);
            add(&mut v, w.bv);
            for (heads, norm) in [(&mut q, w.q_norm), (&mut k, w.k_norm)] {
                for head in heads.chunks_mut(c.head_dim) {
                    if let Some(norm) = norm {
                        let normed = rmsnorm(head, norm, eps);
                        head.copy_from_slice(&normed);
                    }
                    rope(model, c.rope_of(l), c.rope_table_of(l) == 0, head, p);
                }
            }
            keys.push(k);
            values.push(v);
            // Sliding window: the last `window` positions only.
            let first = c.attention_window(l).map_or(0, |window| (p + 1).saturating_sub(window));
            let att = attention(c, &q, &keys[first..], &values[first..]);
            let out = wo.times(&att);
            add_vec(x, &post_norm(out, w.post_attn_norm, eps));

            // Feed-forward: act(x·Wgate) * (x·Wup), then Wdown.
            let xb = rmsnorm(x, w.ffn_norm, eps);
            let act = match c.ffn_act {
                FfnActivation::Silu => silu,
                FfnActivation::GeluTanh => gelu_tanh,
            };
            let hidden: Vec<f64> = w_gate.times(&xb).iter().zip(w_up.times(&xb)).map(|(g, u)| act(*g) * u).collect();
            add_vec(x, &post_norm(w_down.times(&hidden), w.post_ffn_norm, eps));
        }
    }

    let output = Dense::from(model.globals.output);
    xs.iter().map(|x| output.times(&rmsnorm(x, model.globals.output_norm, eps))).collect()
}

/// `rmsnorm(out) · weight` with post-norms (Gemma 3), else `out`.
fn post_norm(out: Vec<f64>, weight: Option<F32Vector<'_>>, eps: f64) -> Vec<f64> {
    match weight {
        Some(w) => rmsnorm(&out, w, eps),
        None => out,
    }
}

/// Causal attention of one position's query (all heads) over the keys and
/// values of the positions it sees (`0..=p`, or the window's): per query head `h`,
/// K/V head `h / (n_heads / n_kv_heads)`, scores `q·k · attn_scale`,
/// softmax, weighted sum of the values.
fn attention(c: &ModelConfig, q: &[f64], keys: &[Vec<f64>], values: &[Vec<f64>]) -> Vec<f64> {
    let hd = c.head_dim;
    let mut out = vec![0.0; c.q_dim()];
    for h in 0..c.n_heads {
        let kv = h / c.gqa_group() * hd;
        let qh = &q[h * hd..(h + 1) * hd];
        let scores: Vec<f64> = keys.iter().map(|k| dot(qh, &k[kv..kv + hd]) * c.attn_scale as f64).collect();
        let probs = softmax(&scores);
        for (prob, v) in probs.iter().zip(values) {
            for (o, vi) in out[h * hd..(h + 1) * hd].iter_mut().zip(&v[kv..kv + hd]) {
                *o += prob * vi;
            }
        }
    }
    out
}

/// Rotates one head by position `p` with RoPE parameters `r`: the first
/// `n_rot` dimensions, in pairs (`(2i, 2i+1)`, or NeoX's `(i, i + n_rot/2)`),
/// pair `i` by the angle `p · freq_scale · base^(-2i / n_rot) / factor_i`
/// (`factor_i` from `rope_freqs.weight` if `with_factors`, else 1).
fn rope(model: &Model<'_>, r: &RopeConfig, with_factors: bool, head: &mut [f64], p: usize) {
    let factors: Vec<f64> = match model.globals.rope_freqs {
        Some(f) if with_factors => f.iter().map(|v| v as f64).collect(),
        _ => vec![1.0; r.n_rot / 2],
    };
    for (i, factor) in factors.iter().enumerate().take(r.n_rot / 2) {
        let theta = p as f64 * r.freq_scale as f64 * libm::pow(r.freq_base as f64, -2.0 * i as f64 / r.n_rot as f64) / factor;
        let (a, b) = match r.layout {
            RopeLayout::Adjacent => (2 * i, 2 * i + 1),
            RopeLayout::NeoX => (i, i + r.n_rot / 2),
        };
        let (x0, x1) = (head[a], head[b]);
        let (cos, sin) = (libm::cos(theta), libm::sin(theta));
        head[a] = x0 * cos - x1 * sin;
        head[b] = x0 * sin + x1 * cos;
    }
}

/// `x / sqrt(mean(x²) + eps) · w`.
fn rmsnorm(x: &[f64], w: F32Vector<'_>, eps: f64) -> Vec<f64> {
    let scale = 1.0 / libm::sqrt(dot(x, x) / x.len() as f64 + eps);
    x.iter().zip(w.iter()).map(|(v, w)| v * scale * w as f64).collect()
}

fn softmax(x: &[f64]) -> Vec<f64> {
    let max = x.iter().copied().fold(f64::MIN, f64::max);
    let exps: Vec<f64> = x.iter().map(|v| libm::exp(v - max)).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

fn silu(x: f64) -> f64 {
    x / (1.0 + libm::exp(-x))
}

/// GELU, tanh approximation: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
fn gelu_tanh(x: f64) -> f64 {
    let sqrt_2_over_pi = libm::sqrt(2.0 / core::f64::consts::PI);
    0.5 * x * (1.0 + libm::tanh(sqrt_2_over_pi * (x + 0.044715 * x * x * x)))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn add_vec(x: &mut [f64], y: &[f64]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

fn add(x: &mut [f64], bias: Option<F32Vector<'_>>) {
    if let Some(b) = bias {
        x.iter_mut().zip(b.iter()).for_each(|(a, b)| *a += b as f64);
    }
}

/// A weight matrix dequantized to f64, `rows` rows of `cols`.
struct Dense {
    cols: usize,
    values: Vec<f64>,
}

impl Dense {
    fn from<'a>(m: impl Into<Matrix<'a>>) -> Dense {
        let m = m.into();
        let mut row = vec![0f32; m.cols()];
        let mut values = Vec::with_capacity(m.rows() * m.cols());
        for r in 0..m.rows() {
            if let Err(e) = m.dequantize_row(r, &mut row) {
                panic!("row {r}: {e}");
            }
            values.extend(row.iter().map(|&v| v as f64));
        }
        Dense { cols: m.cols(), values }
    }

    fn row(&self, r: usize) -> &[f64] {
        &self.values[r * self.cols..(r + 1) * self.cols]
    }

    /// `self · x`.
    fn times(&self, x: &[f64]) -> Vec<f64> {
        self.values.chunks(self.cols).map(|row| dot(row, x)).collect()
    }
}
