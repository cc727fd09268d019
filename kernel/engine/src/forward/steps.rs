//! The steps of one forward call, each computing this seat's tile of the
//! shared buffers ([`SharedBuf`]). [`super::forward`] runs them between the
//! team's barriers.
//!
//! # Phases
//!
//! Between two barriers every shared buffer is either only read, or only
//! written, each element by the one seat whose tile holds it. The tiles come
//! from [`crate::team::tile`] over the seat's index, distinct between the
//! seats of a team ([`crate::team::Team`]); every seat builds its [`Pass`]
//! with the same positions and batch (an [`Agreed`] proves it). This table is what each
//! `SAFETY` comment below refers to:
//!
//! | phase ([`super::forward`]) | reads | writes (this seat's tile) |
//! |---|---|---|
//! | embed | | `x`: rows of its tokens |
//! | q, k, v | `x` | `q`: its query heads; K and V cache: its kv heads, positions `pos..pos + n` |
//! | attention | `q`, K and V cache | `att`: its (token, head) pairs |
//! | output projection | `att` | `x` (or `post`, with post-norms): its rows of `n_embd` |
//! | post-norm (Gemma 3) | `post` | `x`: rows of its tokens |
//! | gate, up | `x` | `hb`: its rows of `n_ff` |
//! | down projection | `hb` | `x` (or `post`): its rows of `n_embd` |
//! | output head | `x` | `logits`: its rows of the vocabulary |
//!
//! (Rows of a matrix are the columns of a token's vector.)

use core::ops::Range;

use super::{math, Agreed};
use crate::matmul::{ActBuf, ActKind, Kernels, Matrix};
use crate::model::{F32Vector, FfnActivation, LayerWeights, Model, ModelConfig};
use crate::quant::dequantize_row;
use crate::state::{Scratch, SharedState, MATMUL_CHUNK_ROWS};
use crate::team::{Seat, SharedBuf, Worker, ROW_GRANULE};

/// One seat's view of one forward call: what every step needs.
pub(super) struct Pass<'a, W: Worker + ?Sized> {
    seat: &'a Seat<'a, W>,
    cfg: &'a ModelConfig,
    model: &'a Model<'a>,
    state: &'a SharedState<'a>,
    kernels: Kernels,
    /// Position of the batch's first token.
    pos: usize,
    /// Tokens in the batch.
    n: usize,
}

impl<'a, W: Worker + ?Sized> Pass<'a, W> {
    /// One seat's view of a forward call over `tokens` at `pos..`; `Agreed`
    /// proves every seat runs the same one (different batches would give
    /// overlapping tiles).
    pub fn begin(seat: &'a Seat<'a, W>, tokens: &[u32], pos: usize, _: Agreed) -> Self {
        let (model, state) = (seat.model(), seat.state());
        Pass { seat, cfg: &model.config, model, state, kernels: model.kernels, pos, n: tokens.len() }
    }

    /// This seat's part of `0..n` in units of `granule`.
    fn tile(&self, n: usize, granule: usize) -> Range<usize> {
        self.seat.tile(n, granule)
    }

    /// `x[t]` = the embedding row of token `t`, for this seat's tokens.
    pub fn embed(&self, tokens: &[u32]) {
        let e = self.cfg.n_embd;
        let table = &self.model.globals.token_embd;
        for t in self.tile(tokens.len(), 1) {
            // SAFETY: phase "embed": row t of x is in this seat's tile.
            let x = unsafe { self.state.x.write(t * e..(t + 1) * e) };
            if let Err(err) = dequantize_row(table.ty, table.row(tokens[t] as usize), x) {
                panic!("embedding row: {err}");
            }
            if self.cfg.embd_scale != 1.0 {
                self.kernels.scale(x, self.cfg.embd_scale);
            }
        }
    }

    /// `scratch.xb` = `rmsnorm(x) · weight` for every token of the batch (every
    /// seat needs all of them: cheaper than a barrier). Runs in a phase that
    /// reads `x`.
    pub fn normalize(&self, weight: F32Vector<'_>, scratch: &mut Scratch) {
        // SAFETY: phases "q, k, v" and "gate, up" read x and nobody writes it.
        unsafe { rmsnorm_rows(&self.state.x, 0..self.n, self.cfg.n_embd, weight, self.cfg.rms_eps, &mut scratch.xb) }
    }

    /// This seat's heads of the concatenated `[q | k | v]` rows: whole heads,
    /// so the seat that computes a head also adds its bias, rotates it and
    /// stores it in the cache.
    pub fn heads(&self) -> HeadTiles {
        let (h, kv) = (self.cfg.n_heads, self.cfg.n_kv_heads);
        let units = self.tile(h + 2 * kv, 1);
        HeadTiles { q: clip(&units, 0, h), k: clip(&units, h, kv), v: clip(&units, h + kv, kv) }
    }

    /// Where layer `layer` keeps its keys and values in the state's cache.
    fn cache(&self, layer: usize) -> LayerCache {
        LayerCache::new(self.state, self.cfg, layer)
    }

    /// `q, k, v = xb·Wq, xb·Wk, xb·Wv` for this seat's heads: queries into
    /// `q`, keys into `scratch.kstage` (stored by [`Self::store_keys`] once
    /// rotated), values straight into the V cache.
    pub fn project_qkv(&self, w: &LayerWeights<'_>, heads: &HeadTiles, layer: usize, scratch: &mut Scratch) {
        let (hd, qd, kvd) = (self.cfg.head_dim, self.cfg.q_dim(), self.cfg.kv_dim());
        let cache = self.cache(layer);
        let rows = |h: &Range<usize>| h.start * hd..h.end * hd;
        let k = &self.kernels;
        let mut input = Input::new(&scratch.xb[..self.n * self.cfg.n_embd], self.n, &mut scratch.acts);
        if !heads.q.is_empty() {
            matmul_rows(k, &w.wq, input.for_weights(k, &w.wq), rows(&heads.q), &mut scratch.mm, |t, r0, vals| {
                let at = t * qd + r0;
                // SAFETY: phase "q, k, v": rows r0.. of token t's query are in this seat's heads.
                unsafe { self.state.q.write(at..at + vals.len()) }.copy_from_slice(vals);
            });
        }
        if !heads.k.is_empty() {
            let stage = &mut scratch.kstage;
            matmul_rows(k, &w.wk, input.for_weights(k, &w.wk), rows(&heads.k), &mut scratch.mm, |t, r0, vals| {
                stage[t * kvd + r0..][..vals.len()].copy_from_slice(vals);
            });
        }
        if !heads.v.is_empty() {
            matmul_rows(k, &w.wv, input.for_weights(k, &w.wv), rows(&heads.v), &mut scratch.mm, |t, r0, vals| {
                let at = cache.value_row(self.pos + t) + r0;
                // SAFETY: phase "q, k, v": rows r0.. of position pos + t's value are in this seat's heads.
                unsafe { self.state.v.write(at..at + vals.len()) }.copy_from_slice(vals);
            });
        }
    }

    /// Adds the Q/K/V biases (Qwen2) to this seat's heads, normalizes its
    /// query and key heads (Qwen3, Gemma 3) and rotates them by their
    /// position (RoPE, with the layer's table).
    pub fn add_bias_and_rope(&self, w: &LayerWeights<'_>, heads: &HeadTiles, layer: usize, scratch: &mut Scratch) {
        let (hd, qd, kvd, rot) = (self.cfg.head_dim, self.cfg.q_dim(), self.cfg.kv_dim(), self.cfg.rope.n_rot);
        let (eps, layout) = (self.cfg.rms_eps, self.cfg.rope.layout);
        let cache = self.cache(layer);
        let table = &self.state.rope[self.cfg.rope_table_of(layer) * self.state.cfg.n_ctx * rot..];
        for t in 0..self.n {
            let p = self.pos + t;
            let angles = &table[p * rot..(p + 1) * rot];
            for h in heads.q.clone() {
                let at = t * qd + h * hd;
                // SAFETY: phase "q, k, v": query head h of token t is this seat's.
                let head = unsafe { self.state.q.write(at..at + hd) };
                add_bias(head, w.bq, h * hd);
                if let Some(norm) = w.q_norm {
                    math::rmsnorm_in_place(head, norm, eps);
                }
                math::rope(head, angles, layout);
            }
            for h in heads.k.clone() {
                let head = &mut scratch.kstage[t * kvd + h * hd..][..hd];
                add_bias(head, w.bk, h * hd);
                if let Some(norm) = w.k_norm {
                    math::rmsnorm_in_place(head, norm, eps);
                }
                math::rope(head, angles, layout);
            }
            for h in heads.v.clone() {
                let at = cache.value_row(p) + h * hd;
                // SAFETY: phase "q, k, v": value head h of position p is this seat's.
                add_bias(unsafe { self.state.v.write(at..at + hd) }, w.bv, h * hd);
            }
        }
    }

    /// Stores this seat's rotated keys in the K cache, transposed:
    /// `[kv_head][dim][position]`, so that scoring a query against every
    /// position is a few long vector updates ([`math::attention_scores`]).
    pub fn store_keys(&self, heads: &HeadTiles, layer: usize, scratch: &Scratch) {
        let (hd, kvd) = (self.cfg.head_dim, self.cfg.kv_dim());
        let cache = self.cache(layer);
        for h in heads.k.clone() {
            for d in 0..hd {
                let at = cache.key_row(h, d) + self.pos;
                // SAFETY: phase "q, k, v": key head h at positions pos..pos + n is this seat's.
                let row = unsafe { self.state.k.write(at..at + self.n) };
                for (t, slot) in row.iter_mut().enumerate() {
                    *slot = scratch.kstage[t * kvd + h * hd + d];
                }
            }
        }
    }

    /// `att = softmax(q·kᵀ · scale) · v`, causal, for this seat's (token,
    /// head) pairs; query head `h` reads K/V head `h / gqa_group`. Scores for
    /// all positions at once: `s[0..=p] += q[d] · K[d][0..=p]`, dimension by
    /// dimension (each score sums its products in dimension order).
    pub fn attend(&self, layer: usize, scratch: &mut Scratch) {
        let cfg = self.cfg;
        let (hd, qd, kvd) = (cfg.head_dim, cfg.q_dim(), cfg.kv_dim());
        let cache = self.cache(layer);
        let k = &self.kernels;
        for unit in self.tile(self.n * cfg.n_heads, 1) {
            let (t, h) = (unit / cfg.n_heads, unit % cfg.n_heads);
            let p = self.pos + t;
            let kvh = h / cfg.gqa_group();
            // SAFETY: phase "attention": q and the K and V cache are only read.
            let (q, keys, values) = unsafe {
                (
                    self.state.q.read(t * qd + h * hd..t * qd + (h + 1) * hd),
                    self.state.k.read(cache.key_row(kvh, 0)..cache.key_row(kvh, hd)),
                    self.state.v.read(cache.value_row(0)..cache.value_row(p + 1)),
                )
            };
            // Whole vectors: the lanes past `p` (stale or unwritten cache
            // entries) are computed and ignored.
            let lanes = (p + 1).next_multiple_of(8);
            math::attention_scores(k, q, keys, cache.stride, &mut scratch.scores[..lanes]);
            let scores = &mut scratch.scores[..p + 1];
            k.scale(scores, cfg.attn_scale);
            if let Some(window) = cfg.attention_window(layer) {
                // Sliding window: positions before p + 1 - window get no weight.
                scores[..(p + 1).saturating_sub(window)].fill(f32::NEG_INFINITY);
            }
            math::softmax(k, scores);
            // SAFETY: phase "attention": head h of token t is this seat's pair.
            let out = unsafe { self.state.att.write(t * qd + h * hd..t * qd + (h + 1) * hd) };
            math::attention_values(k, scores, &values[kvh * hd..], kvd, out);
        }
    }

    /// `x += input · w` for this seat's rows of `n_embd` (the output and the
    /// down projection into the residual stream); `input` is `att` or `hb`,
    /// `w.cols()` wide per token.
    pub fn add_projection(&self, w: &Matrix<'_>, input: &SharedBuf<'_>, scratch: &mut Scratch) {
        let (e, k) = (self.cfg.n_embd, &self.kernels);
        // SAFETY: phases "output projection" and "down projection" read
        // their input (att or hb) and nobody writes it.
        let input = unsafe { input.read(0..self.n * w.cols()) };
        let mut input = Input::new(input, self.n, &mut scratch.acts);
        let post = self.cfg.post_norms;
        matmul_rows(k, w, input.for_weights(k, w), self.tile(e, ROW_GRANULE), &mut scratch.mm, |t, r0, vals| {
            let at = t * e + r0;
            if post {
                // SAFETY: same phases: rows r0.. of token t's post are in this seat's tile.
                unsafe { self.state.post.write(at..at + vals.len()) }.copy_from_slice(vals);
            } else {
                // SAFETY: same phases: rows r0.. of token t's x are in this seat's tile.
                k.add(unsafe { self.state.x.write(at..at + vals.len()) }, vals);
            }
        });
    }

    /// With post-norms (Gemma 3): `x += rmsnorm(post) · weight` for this
    /// seat's tokens, `post` being what [`Self::add_projection`] left there.
    pub fn add_post_norm(&self, weight: Option<F32Vector<'_>>, scratch: &mut Scratch) {
        let (e, k) = (self.cfg.n_embd, &self.kernels);
        let Some(weight) = weight else { return };
        for t in self.tile(self.n, 1) {
            let out = &mut scratch.xb[..e];
            // SAFETY: phase "post-norm": post is only read; row t of x is this seat's token.
            unsafe {
                math::rmsnorm(out, self.state.post.read(t * e..(t + 1) * e), weight, self.cfg.rms_eps);
                k.add(self.state.x.write(t * e..(t + 1) * e), out);
            }
        }
    }

    /// `hb = silu(xb·Wgate) * (xb·Wup)` for this seat's rows of `n_ff`.
    pub fn gate_up(&self, w: &LayerWeights<'_>, scratch: &mut Scratch) {
        let (n, ff, k) = (self.n, self.cfg.n_ff, &self.kernels);
        let mut input = Input::new(&scratch.xb[..n * self.cfg.n_embd], n, &mut scratch.acts);
        let rows = self.tile(ff, ROW_GRANULE);
        let mut r0 = rows.start;
        while r0 < rows.end {
            let r1 = (r0 + MATMUL_CHUNK_ROWS).min(rows.end);
            let len = r1 - r0;
            k.matmul(w.w_gate, input.for_weights(k, &w.w_gate), r0..r1, &mut scratch.mm[..n * len]);
            k.matmul(w.w_up, input.for_weights(k, &w.w_up), r0..r1, &mut scratch.mm2[..n * len]);
            for t in 0..n {
                let gate = &mut scratch.mm[t * len..(t + 1) * len];
                let up = &scratch.mm2[t * len..(t + 1) * len];
                match self.cfg.ffn_act {
                    FfnActivation::Silu => math::swiglu(k, gate, up),
                    FfnActivation::GeluTanh => math::geglu(k, gate, up),
                }
                // SAFETY: phase "gate, up": rows r0..r1 of token t's hb are in this seat's tile.
                unsafe { self.state.hb.write(t * ff + r0..t * ff + r1) }.copy_from_slice(gate);
            }
            r0 = r1;
        }
    }

    /// `logits = (rmsnorm(x) · output_norm) · Wout` over the whole vocabulary
    /// for the batch's tokens `tokens` (this seat's rows of the vocabulary);
    /// logits row `i` is the `i`-th of them.
    pub fn logits(&self, tokens: Range<usize>, scratch: &mut Scratch) {
        let (e, vocab, k) = (self.cfg.n_embd, self.cfg.n_vocab, &self.kernels);
        let m = tokens.len();
        let globals = &self.model.globals;
        // SAFETY: phase "output head": x is only read.
        unsafe { rmsnorm_rows(&self.state.x, tokens, e, globals.output_norm, self.cfg.rms_eps, &mut scratch.xb) };
        let mut input = Input::new(&scratch.xb[..m * e], m, &mut scratch.acts);
        let head = &globals.output;
        matmul_rows(k, head, input.for_weights(k, head), self.tile(vocab, ROW_GRANULE), &mut scratch.mm, |t, r0, vals| {
            let at = t * vocab + r0;
            // SAFETY: phase "output head": vocabulary rows r0.. are in this seat's tile.
            unsafe { self.state.logits.write(at..at + vals.len()) }.copy_from_slice(vals);
        });
    }
}

/// A seat's heads of the concatenated `[q | k | v]` rows (see [`Pass::heads`]).
pub(super) struct HeadTiles {
    q: Range<usize>,
    k: Range<usize>,
    v: Range<usize>,
}

/// One layer's slabs of the KV cache: K transposed, `[kv_head][dim][position]`
/// with rows of `stride` positions; V `[position][kv_dim]`.
struct LayerCache {
    k_base: usize,
    v_base: usize,
    stride: usize,
    head_dim: usize,
    kv_dim: usize,
}

impl LayerCache {
    fn new(state: &SharedState<'_>, cfg: &ModelConfig, layer: usize) -> Self {
        LayerCache { k_base: layer * state.k_layer, v_base: layer * state.v_layer, stride: state.ctx_stride, head_dim: cfg.head_dim, kv_dim: cfg.kv_dim() }
    }

    /// Start of the K cache row of kv head `h`, dimension `d` (one entry per position).
    fn key_row(&self, h: usize, d: usize) -> usize {
        self.k_base + (h * self.head_dim + d) * self.stride
    }

    /// Start of the V cache row of position `p`.
    fn value_row(&self, p: usize) -> usize {
        self.v_base + p * self.kv_dim
    }
}

/// Normalizes rows `rows` of `x` (each `width` wide) into `out`, row by row.
///
/// # Safety
/// Nobody writes those rows of `x` in the current phase.
unsafe fn rmsnorm_rows(x: &SharedBuf<'_>, rows: Range<usize>, width: usize, w: F32Vector<'_>, eps: f32, out: &mut [f32]) {
    for (i, r) in rows.enumerate() {
        // SAFETY: the caller's contract.
        let row = unsafe { x.read(r * width..(r + 1) * width) };
        math::rmsnorm(&mut out[i * width..(i + 1) * width], row, w, eps);
    }
}

/// Activations quantized on demand for each weight type they meet.
struct Input<'s> {
    x: &'s [f32],
    n: usize,
    acts: &'s mut ActBuf,
    kind: Option<ActKind>,
}

impl<'s> Input<'s> {
    fn new(x: &'s [f32], n: usize, acts: &'s mut ActBuf) -> Self {
        Input { x, n, acts, kind: None }
    }

    fn for_weights(&mut self, k: &Kernels, w: &Matrix<'_>) -> &ActBuf {
        let kind = ActKind::for_weights(w.ty());
        if self.kind != kind {
            k.quantize_activations(w.ty(), self.x, self.n, self.acts);
            self.kind = kind;
        }
        self.acts
    }
}

/// `w · acts` for output rows `rows` and every token, in chunks of
/// [`MATMUL_CHUNK_ROWS`]; `sink(token, first_row, values)` receives each
/// token's values for a chunk.
fn matmul_rows(k: &Kernels, w: &Matrix<'_>, acts: &ActBuf, rows: Range<usize>, buf: &mut [f32], mut sink: impl FnMut(usize, usize, &[f32])) {
    let n = acts.batch();
    let mut r0 = rows.start;
    while r0 < rows.end {
        let r1 = (r0 + MATMUL_CHUNK_ROWS).min(rows.end);
        let len = r1 - r0;
        let out = &mut buf[..n * len];
        k.matmul(*w, acts, r0..r1, out);
        for t in 0..n {
            sink(t, r0, &out[t * len..(t + 1) * len]);
        }
        r0 = r1;
    }
}

/// `units ∩ [offset, offset + len)`, shifted to start at 0.
fn clip(units: &Range<usize>, offset: usize, len: usize) -> Range<usize> {
    let start = units.start.clamp(offset, offset + len) - offset;
    let end = units.end.clamp(offset, offset + len) - offset;
    start..end
}

fn add_bias(head: &mut [f32], bias: Option<F32Vector<'_>>, start: usize) {
    if let Some(b) = bias {
        let len = head.len();
        for (v, bv) in head.iter_mut().zip(b.slice(start, start + len).iter()) {
            *v += bv;
        }
    }
}
