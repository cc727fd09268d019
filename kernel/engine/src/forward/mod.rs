//! The LLaMA forward pass, run by every worker of a team in lockstep.
//!
//! One call processes a batch of consecutive tokens (a prefill chunk, or one
//! token when decoding: the same code path) at positions `pos..pos + n`:
//!
//! ```text
//! x = embed(tokens)
//! for each layer:
//!     xb = rmsnorm(x) · attn_norm
//!     q, k, v = xb·Wq, xb·Wk, xb·Wv        (+ biases); RoPE on q and k
//!     k, v -> KV cache at pos..pos+n
//!     att = softmax(q·kᵀ · scale, causal) · v   per head, grouped K/V heads
//!     x += att·Wo
//!     xb = rmsnorm(x) · ffn_norm
//!     x += (silu(xb·Wgate) * xb·Wup)·Wdown
//! logits = (rmsnorm(x) · output_norm)·Wout    for the rows asked for
//! ```
//!
//! Each step is split into tiles (see [`crate::team`]); between steps the
//! workers meet at a barrier. Norms and activation quantization are cheap and
//! computed by every worker for itself, which saves barriers.

mod math;
pub mod generate;

pub use generate::{generate, GenerateError, GenerateOutcome, GenerateParams, Leader, StopReason, TokenSink};
pub use math::exp;

use core::ops::Range;

use crate::matmul::{ActBuf, ActKind, Kernels, Matrix};
use crate::model::{LayerWeights, Model};
use crate::team::{Phase, Seat, SharedBuf, Worker, ROW_GRANULE};
use crate::quant::dequantize_row;
use crate::state::{Scratch, SharedState, MATMUL_CHUNK_ROWS};

/// Which tokens of a batch need logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// None (a prefill chunk that is not the last).
    None,
    /// The last token only (generation): logits row 0.
    Last,
    /// Every token (scoring, perplexity): row `i` for token `i`.
    All,
}

/// One forward call: `tokens` at positions `pos..pos + tokens.len()`.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'t> {
    pub tokens: &'t [u32],
    pub pos: usize,
    pub logits: Logits,
}

/// Runs one forward call from `seat` of its team. Every seat of the team
/// must call it with the same batch (checked: a seat that disagrees with seat
/// 0 panics before writing anything), each with its own scratch. Returns once
/// the logits are complete for everyone.
///
/// Panics (a caller bug, not bad input) if the batch is empty or too large
/// for the state, runs past the context, or holds a token id outside the
/// vocabulary: callers validate user input first.
pub fn forward<W: Worker + ?Sized>(seat: &Seat<'_, W>, scratch: &mut Scratch, batch: &Batch<'_>) {
    let (model, state, worker) = (seat.model(), seat.state(), seat.worker());
    let cfg = &model.config;
    let n = batch.tokens.len();
    assert!(n >= 1 && n <= state.cfg.max_batch, "batch of {n} tokens (state holds {})", state.cfg.max_batch);
    assert!(batch.pos + n <= state.cfg.n_ctx, "positions {}..{} exceed the context of {}", batch.pos, batch.pos + n, state.cfg.n_ctx);
    assert!(batch.tokens.iter().all(|&t| (t as usize) < cfg.n_vocab), "token id outside the vocabulary");
    if batch.logits == Logits::All {
        assert!(n <= state.cfg.logit_rows, "{n} logit rows asked, state holds {}", state.cfg.logit_rows);
    }

    worker.phase_begin(Phase::Embed);
    seat.agree_on(batch.signature());
    embed(model, state, seat, batch.tokens);
    for layer in 0..cfg.n_layers {
        let w = worker.acquire_layer(layer);
        attention(model, state, scratch, seat, &w, layer, batch.pos, n);
        ffn(model, state, scratch, seat, &w, layer, n);
    }
    output(model, state, scratch, seat, n, batch.logits);
}

impl Batch<'_> {
    /// FNV-1a over everything that decides the tiles (and the tokens), for
    /// [`Seat::agree_on`].
    fn signature(&self) -> u64 {
        let logits = match self.logits {
            Logits::None => 0,
            Logits::Last => 1,
            Logits::All => 2,
        };
        let words = [self.tokens.len() as u64, self.pos as u64, logits].into_iter().chain(self.tokens.iter().map(|&t| t as u64));
        words.fold(0xcbf2_9ce4_8422_2325u64, |h, w| w.to_le_bytes().iter().fold(h, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)))
    }
}

/// x[t] = the embedding row of token t (tiles: tokens).
fn embed<W: Worker + ?Sized>(model: &Model<'_>, state: &SharedState<'_>, seat: &Seat<'_, W>, tokens: &[u32]) {
    let e = model.config.n_embd;
    let table = &model.globals.token_embd;
    for t in seat.tile(tokens.len(), 1) {
        let row = table.row(tokens[t] as usize);
        // SAFETY: row t of x belongs to this seat's token tile; nobody reads x in this phase.
        let x = unsafe { state.x.write(t * e..(t + 1) * e) };
        if let Err(err) = dequantize_row(table.ty, row, x) {
            panic!("embedding row: {err}");
        }
    }
    seat.worker().phase_end(Phase::Embed);
    seat.barrier();
}

/// Normalizes rows `rows` of `x` (each `width` wide) into `out`, row by row.
///
/// # Safety
/// Nobody writes those rows of `x` in the current phase.
unsafe fn rmsnorm_rows(x: &SharedBuf<'_>, rows: Range<usize>, width: usize, w: crate::model::F32Vector<'_>, eps: f32, out: &mut [f32]) {
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

/// The attention half of a layer (three barriers).
#[allow(clippy::too_many_arguments)]
fn attention<W: Worker + ?Sized>(model: &Model<'_>, state: &SharedState<'_>, scratch: &mut Scratch, seat: &Seat<'_, W>, w: &LayerWeights<'_>, layer: usize, pos: usize, n: usize) {
    let cfg = &model.config;
    let k = &model.kernels;
    let (e, hd, qd, kvd) = (cfg.n_embd, cfg.head_dim, cfg.q_dim(), cfg.kv_dim());
    let rot = cfg.rope.n_rot;
    let (k_base, v_base) = (layer * state.k_layer, layer * state.v_layer);
    seat.worker().phase_begin(Phase::Attention { layer });

    // Q, K, V. Tiles are whole heads of the concatenated [q | k | v] rows, so
    // the worker that computes a head also adds its bias, rotates it and
    // stores it in the cache.
    // SAFETY: nobody writes x in this phase (the last write was before the previous barrier).
    unsafe { rmsnorm_rows(&state.x, 0..n, e, w.attn_norm, cfg.rms_eps, &mut scratch.xb[..n * e]) };
    let mut input = Input::new(&scratch.xb[..n * e], n, &mut scratch.acts);
    let units = seat.tile(cfg.n_heads + 2 * cfg.n_kv_heads, 1);
    let q_heads = clip(&units, 0, cfg.n_heads);
    let k_heads = clip(&units, cfg.n_heads, cfg.n_kv_heads);
    let v_heads = clip(&units, cfg.n_heads + cfg.n_kv_heads, cfg.n_kv_heads);
    let heads_rows = |h: &Range<usize>| h.start * hd..h.end * hd;
    let stride = state.ctx_stride;
    // K is cached transposed, [kv_head][dim][position], so that scoring a
    // query against every position is a few long vector updates (see below).
    let key_at = |h: usize, d: usize| k_base + (h * hd + d) * stride;
    let value_row = |t: usize| v_base + (pos + t) * kvd;

    // SAFETY (every q, k and v write in this phase): the ranges lie in this
    // seat's heads (`units`, disjoint between seats) of rows or positions
    // pos..pos + n, which nobody reads until the barrier below; each view
    // ends before the next is taken.
    if !q_heads.is_empty() {
        let acts = input.for_weights(k, &w.wq);
        matmul_rows(k, &w.wq, acts, heads_rows(&q_heads), &mut scratch.mm, |t, r0, vals| {
            let at = t * qd + r0;
            unsafe { state.q.write(at..at + vals.len()) }.copy_from_slice(vals);
        });
    }
    if !k_heads.is_empty() {
        let acts = input.for_weights(k, &w.wk);
        let stage = &mut scratch.kstage;
        matmul_rows(k, &w.wk, acts, heads_rows(&k_heads), &mut scratch.mm, |t, r0, vals| {
            stage[t * kvd + r0..t * kvd + r0 + vals.len()].copy_from_slice(vals);
        });
    }
    if !v_heads.is_empty() {
        let acts = input.for_weights(k, &w.wv);
        matmul_rows(k, &w.wv, acts, heads_rows(&v_heads), &mut scratch.mm, |t, r0, vals| {
            let at = value_row(t) + r0;
            unsafe { state.v.write(at..at + vals.len()) }.copy_from_slice(vals);
        });
    }
    for t in 0..n {
        let angles = &state.rope[(pos + t) * rot..(pos + t + 1) * rot];
        for h in q_heads.clone() {
            let at = t * qd + h * hd;
            let head = unsafe { state.q.write(at..at + hd) };
            add_bias(head, w.bq, h * hd);
            math::rope(head, angles, cfg.rope.layout);
        }
        for h in k_heads.clone() {
            let head = &mut scratch.kstage[t * kvd + h * hd..t * kvd + (h + 1) * hd];
            add_bias(head, w.bk, h * hd);
            math::rope(head, angles, cfg.rope.layout);
        }
        for h in v_heads.clone() {
            let at = value_row(t) + h * hd;
            add_bias(unsafe { state.v.write(at..at + hd) }, w.bv, h * hd);
        }
    }
    for h in k_heads.clone() {
        for d in 0..hd {
            let at = key_at(h, d) + pos;
            for (t, slot) in unsafe { state.k.write(at..at + n) }.iter_mut().enumerate() {
                *slot = scratch.kstage[t * kvd + h * hd + d];
            }
        }
    }
    seat.barrier();

    // Attention, causal, one (token, head) pair per tile unit. Scores for
    // all positions at once: s[0..=p] += q[d] * K[d][0..=p], dimension by
    // dimension (each score sums its products in dimension order).
    let group = cfg.gqa_group();
    for unit in seat.tile(n * cfg.n_heads, 1) {
        let (t, h) = (unit / cfg.n_heads, unit % cfg.n_heads);
        let p = pos + t;
        let kvh = h / group;
        // SAFETY: q, k and v are only read in this phase.
        let (q, keys, values) = unsafe {
            (state.q.read(t * qd + h * hd..t * qd + (h + 1) * hd), state.k.read(key_at(kvh, 0)..key_at(kvh, hd)), state.v.read(v_base..v_base + (p + 1) * kvd))
        };
        // Whole vectors: the lanes past `p` (stale or unwritten cache
        // entries) are computed and ignored.
        let lanes = (p + 1).next_multiple_of(8);
        math::attention_scores(k, q, keys, stride, &mut scratch.scores[..lanes]);
        let scores = &mut scratch.scores[..p + 1];
        k.scale(scores, cfg.attn_scale);
        math::softmax(k, scores);
        // SAFETY: head h of token t is this seat's tile unit; att is not read in this phase.
        let out = unsafe { state.att.write(t * qd + h * hd..t * qd + (h + 1) * hd) };
        math::attention_values(k, scores, &values[kvh * hd..], kvd, out);
    }
    seat.barrier();

    // Output projection into the residual stream (tiles: rows of n_embd).
    // SAFETY: att is only read in this phase.
    let mut input = Input::new(unsafe { state.att.read(0..n * qd) }, n, &mut scratch.acts);
    let acts = input.for_weights(k, &w.wo);
    matmul_rows(k, &w.wo, acts, seat.tile(e, ROW_GRANULE), &mut scratch.mm, |t, r0, vals| {
        let at = t * e + r0;
        // SAFETY: rows r0.. of n_embd are in this seat's tile; nobody reads x in this phase.
        k.add(unsafe { state.x.write(at..at + vals.len()) }, vals);
    });
    seat.worker().phase_end(Phase::Attention { layer });
    seat.barrier();
}

/// The FFN half of a layer (two barriers); releases the layer's weights.
fn ffn<W: Worker + ?Sized>(model: &Model<'_>, state: &SharedState<'_>, scratch: &mut Scratch, seat: &Seat<'_, W>, w: &LayerWeights<'_>, layer: usize, n: usize) {
    let cfg = &model.config;
    let k = &model.kernels;
    let (e, ff) = (cfg.n_embd, cfg.n_ff);
    seat.worker().phase_begin(Phase::Ffn { layer });

    // hb = silu(xb·Wgate) * (xb·Wup), tiles: rows of n_ff.
    // SAFETY: nobody writes x in this phase.
    unsafe { rmsnorm_rows(&state.x, 0..n, e, w.ffn_norm, cfg.rms_eps, &mut scratch.xb[..n * e]) };
    let mut input = Input::new(&scratch.xb[..n * e], n, &mut scratch.acts);
    let rows = seat.tile(ff, ROW_GRANULE);
    let mut r0 = rows.start;
    while r0 < rows.end {
        let r1 = (r0 + MATMUL_CHUNK_ROWS).min(rows.end);
        let len = r1 - r0;
        k.matmul(w.w_gate, input.for_weights(k, &w.w_gate), r0..r1, &mut scratch.mm[..n * len]);
        k.matmul(w.w_up, input.for_weights(k, &w.w_up), r0..r1, &mut scratch.mm2[..n * len]);
        for t in 0..n {
            let gate = &mut scratch.mm[t * len..(t + 1) * len];
            math::swiglu(k, gate, &scratch.mm2[t * len..(t + 1) * len]);
            // SAFETY: rows r0..r1 of n_ff are in this seat's tile; nobody reads hb in this phase.
            unsafe { state.hb.write(t * ff + r0..t * ff + r1) }.copy_from_slice(gate);
        }
        r0 = r1;
    }
    seat.barrier();

    // x += hb·Wdown, tiles: rows of n_embd.
    // SAFETY: hb is only read in this phase.
    let mut input = Input::new(unsafe { state.hb.read(0..n * ff) }, n, &mut scratch.acts);
    let acts = input.for_weights(k, &w.w_down);
    matmul_rows(k, &w.w_down, acts, seat.tile(e, ROW_GRANULE), &mut scratch.mm, |t, r0, vals| {
        let at = t * e + r0;
        // SAFETY: rows r0.. of n_embd are in this seat's tile; nobody reads x in this phase.
        k.add(unsafe { state.x.write(at..at + vals.len()) }, vals);
    });
    seat.worker().release_layer(layer);
    seat.worker().phase_end(Phase::Ffn { layer });
    seat.barrier();
}

/// Final norm and the full output head for the rows asked for (tiles: rows
/// of the vocabulary).
fn output<W: Worker + ?Sized>(model: &Model<'_>, state: &SharedState<'_>, scratch: &mut Scratch, seat: &Seat<'_, W>, n: usize, which: Logits) {
    let cfg = &model.config;
    let k = &model.kernels;
    let (e, vocab) = (cfg.n_embd, cfg.n_vocab);
    let rows = match which {
        Logits::None => return,
        Logits::Last => n - 1..n,
        Logits::All => 0..n,
    };
    let m = rows.len();
    seat.worker().phase_begin(Phase::Output);
    // SAFETY: nobody writes x in this phase.
    unsafe { rmsnorm_rows(&state.x, rows, e, model.globals.output_norm, cfg.rms_eps, &mut scratch.xb[..m * e]) };
    let head = &model.globals.output;
    let mut input = Input::new(&scratch.xb[..m * e], m, &mut scratch.acts);
    let acts = input.for_weights(k, head);
    matmul_rows(k, head, acts, seat.tile(vocab, ROW_GRANULE), &mut scratch.mm, |t, r0, vals| {
        let at = t * vocab + r0;
        // SAFETY: vocabulary rows r0.. are in this seat's tile; nobody reads logits in this phase.
        unsafe { state.logits.write(at..at + vals.len()) }.copy_from_slice(vals);
    });
    seat.worker().phase_end(Phase::Output);
    seat.barrier();
}

/// `units ∩ [offset, offset + len)`, shifted to start at 0.
fn clip(units: &Range<usize>, offset: usize, len: usize) -> Range<usize> {
    let start = units.start.clamp(offset, offset + len) - offset;
    let end = units.end.clamp(offset, offset + len) - offset;
    start..end
}

fn add_bias(head: &mut [f32], bias: Option<crate::model::F32Vector<'_>>, start: usize) {
    if let Some(b) = bias {
        let len = head.len();
        for (v, bv) in head.iter_mut().zip(b.slice(start, start + len).iter()) {
            *v += bv;
        }
    }
}

#[cfg(test)]
mod tests;
