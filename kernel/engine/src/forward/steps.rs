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
//! | attention, one token ([`Pass::splits`]) | `q`, K and V cache | `part`: its (kv head, chunk) units' partials |
//! | attention, more tokens | `q`, K and V cache | `att`: its (query block, kv head) units' heads |
//! | combine (one token only) | `part` | `att`: its query heads |
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
use crate::state::{KvType, Scratch, SharedState, ATTN_CHUNK, ATTN_QUERY_BLOCK, MATMUL_CHUNK_ROWS};
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
    /// `q`, keys and values into `scratch.kstage` and `vstage` (stored in the
    /// cache by [`Self::store_kv`] once rotated and biased).
    pub fn project_qkv(&self, w: &LayerWeights<'_>, heads: &HeadTiles, scratch: &mut Scratch) {
        let (hd, qd, kvd) = (self.cfg.head_dim, self.cfg.q_dim(), self.cfg.kv_dim());
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
            let stage = &mut scratch.vstage;
            matmul_rows(k, &w.wv, input.for_weights(k, &w.wv), rows(&heads.v), &mut scratch.mm, |t, r0, vals| {
                stage[t * kvd + r0..][..vals.len()].copy_from_slice(vals);
            });
        }
    }

    /// Adds the Q/K/V biases (Qwen2) to this seat's heads, normalizes its
    /// query and key heads (Qwen3, Gemma 3) and rotates them by their
    /// position (RoPE, with the layer's table).
    pub fn add_bias_and_rope(&self, w: &LayerWeights<'_>, heads: &HeadTiles, layer: usize, scratch: &mut Scratch) {
        let (hd, qd, kvd, rot) = (self.cfg.head_dim, self.cfg.q_dim(), self.cfg.kv_dim(), self.cfg.rope.n_rot);
        let (eps, layout) = (self.cfg.rms_eps, self.cfg.rope.layout);
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
                add_bias(&mut scratch.vstage[t * kvd + h * hd..][..hd], w.bv, h * hd);
            }
        }
    }

    /// Stores this seat's keys and values of positions `pos..pos + n` in
    /// the caches, in the state's KV type (one row per head and position).
    pub fn store_kv(&self, heads: &HeadTiles, layer: usize, scratch: &Scratch) {
        let (hd, kvd) = (self.cfg.head_dim, self.cfg.kv_dim());
        let (cache, kv) = (self.cache(layer), self.state.cfg.kv_type);
        for t in 0..self.n {
            let p = self.pos + t;
            for h in heads.k.clone() {
                let key = &scratch.kstage[t * kvd + h * hd..][..hd];
                if kv.transposed_keys() {
                    for (d, value) in key.iter().enumerate() {
                        // SAFETY: phase "q, k, v": key head h at positions pos..pos + n is this seat's.
                        let slot = unsafe { self.state.k.write_bytes(cache.key_dim(h, d, p..p + 1)) };
                        kv.encode(core::slice::from_ref(value), slot);
                    }
                } else {
                    // SAFETY: as above.
                    let row = unsafe { self.state.k.write_bytes(cache.key_rows(h, p..p + 1)) };
                    kv.encode(key, row);
                }
            }
            for h in heads.v.clone() {
                // SAFETY: phase "q, k, v": value head h at positions pos..pos + n is this seat's.
                let row = unsafe { self.state.v.write_bytes(cache.value_rows(h, p..p + 1)) };
                kv.encode(&scratch.vstage[t * kvd + h * hd..][..hd], row);
            }
        }
    }

    /// Whether attention splits the positions over the seats: for a single
    /// token (decode), whose few heads alone would leave cores idle. Then
    /// [`Self::attend`] writes per-chunk partials and [`Self::combine`]
    /// merges them. Either way every (token, head) merges the same chunk
    /// partials in the same order: the same bits.
    pub fn splits(&self) -> bool {
        self.n == 1
    }

    /// The positions a query at `p` attends to in `layer`: `0..=p`, or its
    /// sliding window.
    fn span(&self, layer: usize, p: usize) -> Range<usize> {
        let lo = self.cfg.attention_window(layer).map_or(0, |w| (p + 1).saturating_sub(w));
        lo..p + 1
    }

    /// `att = softmax(q·kᵀ · scale) · v` over each query's span, by chunks
    /// of [`ATTN_CHUNK`] positions ([`chunk_partial`], [`merge`]). One token:
    /// this seat's (kv head, chunk) units, partials into `part`. More: this
    /// seat's (block of [`ATTN_QUERY_BLOCK`] tokens, kv head) tiles, each
    /// chunk of keys and values decoded once for the whole block.
    pub fn attend(&self, layer: usize, scratch: &mut Scratch) {
        let cfg = self.cfg;
        let (hd, g, n_kv) = (cfg.head_dim, cfg.gqa_group(), cfg.n_kv_heads);
        if self.splits() {
            let span = self.span(layer, self.pos);
            let chunks = chunks_of(&span);
            let nc = chunks.len();
            let stride = self.state.cfg.n_ctx.div_ceil(ATTN_CHUNK);
            for unit in self.tile(n_kv * nc, 1) {
                let (kvh, c) = (unit / nc, chunks.start + unit % nc);
                let rows = in_chunk(c, &clamp_chunk(c, &span));
                let tiles = self.tiles(layer, kvh, c, rows.clone(), scratch);
                for j in 0..g {
                    let h = kvh * g + j;
                    // SAFETY: phase "attention": q is only read.
                    let q = unsafe { self.state.q.read(h * hd..(h + 1) * hd) };
                    chunk_partial(&self.kernels, q, rows.clone(), cfg.attn_scale, &tiles, scratch);
                    let at = (h * stride + c) * (hd + 2);
                    // SAFETY: phase "attention": the partial of (head h, chunk c) is this seat's unit's.
                    unsafe { self.state.part.write(at..at + hd + 2) }.copy_from_slice(&scratch.chunk);
                }
            }
            return;
        }
        let qd = cfg.q_dim();
        let blocks = self.n.div_ceil(ATTN_QUERY_BLOCK);
        for unit in self.tile(blocks * n_kv, 1) {
            let (b, kvh) = (unit / n_kv, unit % n_kv);
            let tokens = b * ATTN_QUERY_BLOCK..((b + 1) * ATTN_QUERY_BLOCK).min(self.n);
            let (first, last) = (self.span(layer, self.pos + tokens.start), self.span(layer, self.pos + tokens.end - 1));
            let run_len = hd + 2;
            scratch.run[..tokens.len() * g * run_len].fill(0.0);
            for c in first.start / ATTN_CHUNK..=(last.end - 1) / ATTN_CHUNK {
                // The rows of chunk c that some query of the block sees.
                let tiles = self.tiles(layer, kvh, c, in_chunk(c, &clamp_chunk(c, &(first.start..last.end))), scratch);
                for (i, t) in tokens.clone().enumerate() {
                    let rows = clamp_chunk(c, &self.span(layer, self.pos + t));
                    if rows.is_empty() {
                        continue;
                    }
                    let rows = in_chunk(c, &rows);
                    for j in 0..g {
                        let h = kvh * g + j;
                        // SAFETY: phase "attention": q is only read.
                        let q = unsafe { self.state.q.read(t * qd + h * hd..t * qd + (h + 1) * hd) };
                        chunk_partial(&self.kernels, q, rows.clone(), cfg.attn_scale, &tiles, scratch);
                        let at = (i * g + j) * run_len;
                        merge(&self.kernels, &mut scratch.run[at..at + run_len], &scratch.chunk);
                    }
                }
            }
            for (i, t) in tokens.enumerate() {
                for j in 0..g {
                    let h = kvh * g + j;
                    let at = (i * g + j) * run_len;
                    // SAFETY: phase "attention": head h of token t is this seat's tile's.
                    let out = unsafe { self.state.att.write(t * qd + h * hd..t * qd + (h + 1) * hd) };
                    finish(&self.kernels, &scratch.run[at..at + run_len], out);
                }
            }
        }
    }

    /// After a split [`Self::attend`]: merges each of this seat's query
    /// heads' chunk partials in chunk order into `att`.
    pub fn combine(&self, layer: usize, scratch: &mut Scratch) {
        let hd = self.cfg.head_dim;
        let chunks = chunks_of(&self.span(layer, self.pos));
        let stride = self.state.cfg.n_ctx.div_ceil(ATTN_CHUNK);
        let run = &mut scratch.run[..hd + 2];
        for h in self.tile(self.cfg.n_heads, 1) {
            run.fill(0.0);
            for c in chunks.clone() {
                let at = (h * stride + c) * (hd + 2);
                // SAFETY: phase "combine": part is only read.
                merge(&self.kernels, run, unsafe { self.state.part.read(at..at + hd + 2) });
            }
            // SAFETY: phase "combine": head h of the one token is this seat's.
            finish(&self.kernels, run, unsafe { self.state.att.write(h * hd..(h + 1) * hd) });
        }
    }

    /// The keys and values of kv head `kvh`, chunk `c`, positions `rows`
    /// within it, as [`chunk_partial`] reads them: f16 straight from the
    /// caches, other types decoded by [`Self::load_tiles`].
    fn tiles(&self, layer: usize, kvh: usize, c: usize, rows: Range<usize>, scratch: &mut Scratch) -> Tiles<'a> {
        if self.state.cfg.kv_type != KvType::F16 {
            self.load_tiles(layer, kvh, c, rows, scratch);
            return Tiles::Decoded;
        }
        let (cache, hd, c0) = (self.cache(layer), self.cfg.head_dim, c * ATTN_CHUNK);
        let whole = c0..c0 + ATTN_CHUNK;
        let k = cache.key_dim(kvh, 0, whole.clone()).start..cache.key_dim(kvh, hd - 1, whole).end;
        // SAFETY: phase "attention": the K and V caches are only read.
        unsafe { Tiles::F16 { k: self.state.k.read_bytes(k), v: self.state.v.read_bytes(cache.value_rows(kvh, c0..c0 + rows.end)) } }
    }

    /// Decodes kv head `kvh`'s keys and values of chunk `c`, positions
    /// `rows` within it, into `scratch.ktile` (transposed: `[dim][position
    /// in the chunk]`) and `vtile` (`[position in the chunk][dim]`).
    fn load_tiles(&self, layer: usize, kvh: usize, c: usize, rows: Range<usize>, scratch: &mut Scratch) {
        let (cache, kv, hd) = (self.cache(layer), self.state.cfg.kv_type, self.cfg.head_dim);
        let k = &self.kernels;
        let abs = c * ATTN_CHUNK + rows.start..c * ATTN_CHUNK + rows.end;
        if kv.transposed_keys() {
            for d in 0..hd {
                // SAFETY: phase "attention": the K cache is only read.
                let keys = unsafe { self.state.k.read_bytes(cache.key_dim(kvh, d, abs.clone())) };
                k.decode_kv(kv, keys, &mut scratch.ktile[d * ATTN_CHUNK + rows.start..d * ATTN_CHUNK + rows.end]);
            }
        } else {
            // SAFETY: phase "attention": the K cache is only read.
            let keys = unsafe { self.state.k.read_bytes(cache.key_rows(kvh, abs.clone())) };
            let krows = &mut scratch.krows[rows.start * hd..rows.end * hd];
            k.decode_kv(kv, keys, krows);
            for (i, row) in rows.clone().zip(krows.chunks_exact(hd)) {
                for (d, &v) in row.iter().enumerate() {
                    scratch.ktile[d * ATTN_CHUNK + i] = v;
                }
            }
        }
        // SAFETY: phase "attention": the V cache is only read.
        let values = unsafe { self.state.v.read_bytes(cache.value_rows(kvh, abs)) };
        k.decode_kv(kv, values, &mut scratch.vtile[rows.start * hd..rows.end * hd]);
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

    /// `hb = act(xb·Wgate) * (xb·Wup)` (SiLU, or GELU for Gemma 3) for this seat's rows of `n_ff`.
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

/// One layer's slabs of the KV caches (see [`crate::state`]): V, and Q8_0
/// K, `[kv_head][position]` rows of `row_bytes`; f16 and f32 K
/// `[kv_head][chunk][dim][position in the chunk]`.
struct LayerCache {
    k_base: usize,
    v_base: usize,
    n_ctx: usize,
    chunks: usize,
    head_dim: usize,
    row_bytes: usize,
    elem_bytes: usize,
}

impl LayerCache {
    fn new(state: &SharedState<'_>, cfg: &ModelConfig, layer: usize) -> Self {
        let n_ctx = state.cfg.n_ctx;
        LayerCache {
            k_base: layer * state.k_layer * 4,
            v_base: layer * state.v_layer * 4,
            n_ctx,
            chunks: n_ctx.div_ceil(ATTN_CHUNK),
            head_dim: cfg.head_dim,
            row_bytes: state.row_bytes,
            elem_bytes: state.cfg.kv_type.elem_bytes().unwrap_or(0),
        }
    }

    /// Bytes of kv head `h`'s value rows for positions `p`.
    fn value_rows(&self, h: usize, p: Range<usize>) -> Range<usize> {
        let at = |p: usize| self.v_base + (h * self.n_ctx + p) * self.row_bytes;
        at(p.start)..at(p.end)
    }

    /// Bytes of kv head `h`'s key rows for positions `p` (Q8_0 keys).
    fn key_rows(&self, h: usize, p: Range<usize>) -> Range<usize> {
        let at = |p: usize| self.k_base + (h * self.n_ctx + p) * self.row_bytes;
        at(p.start)..at(p.end)
    }

    /// Bytes of dimension `d` of kv head `h`'s keys for positions `p`, all
    /// in one chunk (transposed f16 and f32 keys).
    fn key_dim(&self, h: usize, d: usize, p: Range<usize>) -> Range<usize> {
        let c = p.start / ATTN_CHUNK;
        debug_assert!(p.is_empty() || (p.end - 1) / ATTN_CHUNK == c);
        let row = self.k_base + ((h * self.chunks + c) * self.head_dim + d) * ATTN_CHUNK * self.elem_bytes;
        let at = |p: usize| row + (p - c * ATTN_CHUNK) * self.elem_bytes;
        at(p.start)..at(p.end)
    }
}

/// Positions `rows` of chunk `c`, as offsets in the chunk.
fn in_chunk(c: usize, rows: &Range<usize>) -> Range<usize> {
    rows.start - c * ATTN_CHUNK..rows.end - c * ATTN_CHUNK
}

/// The chunks (indices) that positions `span` touch.
fn chunks_of(span: &Range<usize>) -> Range<usize> {
    span.start / ATTN_CHUNK..(span.end - 1) / ATTN_CHUNK + 1
}

/// `span ∩ chunk c`.
fn clamp_chunk(c: usize, span: &Range<usize>) -> Range<usize> {
    let (lo, hi) = (c * ATTN_CHUNK, (c + 1) * ATTN_CHUNK);
    let (a, b) = (span.start.max(lo), span.end.min(hi));
    a..b.max(a)
}

/// Where [`chunk_partial`] finds a chunk's keys and values.
enum Tiles<'c> {
    /// In `scratch.ktile` (transposed) and `vtile`.
    Decoded,
    /// In the f16 caches: the chunk's key block (`[dim][128 positions]`)
    /// and its value rows from the chunk's first position.
    F16 { k: &'c [u8], v: &'c [u8] },
}

/// One query head against positions `rows` (offsets in the chunk) of a
/// chunk's keys and values, into `scratch.chunk = [m, l, o...]`: scores
/// `s_t = dot(q, k_t) · scale` ([`Kernels::dots_t`]), `m = max s_t`,
/// `p_t = exp(s_t − m)`, `l = Σ p_t` (8 lanes), `o = Σ p_t · v_t`
/// ([`Kernels::weighted_sum`]). Reading f16 directly or decoded tiles
/// gives the same bits (decoding is exact).
fn chunk_partial(k: &Kernels, q: &[f32], rows: Range<usize>, scale: f32, tiles: &Tiles<'_>, scratch: &mut Scratch) {
    let hd = q.len();
    let probs = &mut scratch.probs[..rows.len()];
    match tiles {
        Tiles::Decoded => k.dots_t(q, &scratch.ktile, ATTN_CHUNK, rows.clone(), probs),
        Tiles::F16 { k: keys, .. } => k.dots_t_f16(q, keys, ATTN_CHUNK, rows.clone(), probs),
    }
    let (m, l) = k.vectorized(|| math::exp_normalize(probs, scale));
    let (head, o) = scratch.chunk.split_at_mut(2);
    match tiles {
        Tiles::Decoded => k.weighted_sum(probs, &scratch.vtile[rows.start * hd..rows.end * hd], o),
        Tiles::F16 { v, .. } => k.weighted_sum_f16(probs, &v[rows.start * hd * 2..rows.end * hd * 2], o),
    }
    head[0] = m;
    head[1] = l;
}

/// Folds a chunk partial `part = [m, l, o...]` into the running `run`
/// (empty while its sum is 0): with `m' = max(m_run, m_part)`,
/// `l = l_run · e^(m_run − m') + l_part · e^(m_part − m')`, the same
/// factors on `o`.
fn merge(k: &Kernels, run: &mut [f32], part: &[f32]) {
    if run[1] == 0.0 {
        run.copy_from_slice(part);
        return;
    }
    k.vectorized(|| math::merge_partial(run, part))
}

/// `out = o / l` of a merged partial.
fn finish(k: &Kernels, run: &[f32], out: &mut [f32]) {
    let inv = 1.0 / run[1];
    k.vectorized(|| {
        for (o, &v) in out.iter_mut().zip(&run[2..]) {
            *o = v * inv;
        }
    })
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
