//! The LLaMA forward pass, run by every worker of a team in lockstep.
//!
//! One call processes a batch of consecutive tokens (a prefill chunk, or one
//! token when decoding: the same code path) at positions `pos..pos + n`:
//!
//! ```text
//! x = embed(tokens)                    (· sqrt(n_embd): Gemma 3)
//! for each layer:
//!     xb = rmsnorm(x) · attn_norm
//!     q, k, v = xb·Wq, xb·Wk, xb·Wv        (+ biases); per-head rmsnorm of
//!                                          q and k (Qwen3, Gemma 3); RoPE on q and k
//!     k, v -> KV cache at pos..pos+n
//!     att = softmax(q·kᵀ · scale, causal) · v   per head, grouped K/V heads
//!                                          (sliding window on Gemma 3's local layers)
//!     x += att·Wo                          (Gemma 3: x += rmsnorm(att·Wo) · post_attn_norm)
//!     xb = rmsnorm(x) · ffn_norm
//!     x += (act(xb·Wgate) * xb·Wup)·Wdown  (act: SiLU, or GELU-tanh for Gemma 3;
//!                                           Gemma 3 post-norms this too)
//! logits = (rmsnorm(x) · output_norm)·Wout    for the rows asked for
//! ```
//!
//! [`forward`] is that loop: each line a step of `steps.rs` that computes this
//! seat's tile (see [`crate::team`]), and between phases the seats meet at the
//! team's barrier. Norms and activation quantization are cheap and computed
//! by every seat for itself, which saves barriers. The same computation in
//! f64, with no tiles, is [`crate::reference`].

mod math;
#[allow(unsafe_code)] // the seats' views of the shared buffers, phase by phase
mod steps;
pub mod generate;

pub use generate::{generate, GenerateError, GenerateOutcome, GenerateParams, Leader, StopReason, TokenSink};
pub use math::exp;

use core::ops::Range;

use crate::state::Scratch;
use crate::team::{Phase, Seat, Worker};
use steps::Pass;

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

impl Logits {
    /// The tokens of a batch of `n` that get logits (row `i` for the `i`-th).
    fn tokens(self, n: usize) -> Option<Range<usize>> {
        match self {
            Logits::None => None,
            Logits::Last => Some(n - 1..n),
            Logits::All => Some(0..n),
        }
    }
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
    run(seat, scratch, batch, None)
}

/// Proof that every seat of the team runs the same forward calls, so their
/// tiles of the shared buffers are disjoint. Made by [`Agreed::on`] (one
/// barrier at which every seat compares its words with seat 0's, exactly):
/// `forward` checks each batch; `generate` checks its parameters once and
/// derives every batch from them and from the tokens the leader publishes.
#[derive(Clone, Copy)]
struct Agreed(());

/// What [`Agreed::on`] compares: a kind, the three numbers that decide the
/// tiles, and a hash of the tokens (which only decide the values).
enum Agreement<'a> {
    Batch(&'a Batch<'a>),
    Generation(&'a GenerateParams<'a>),
}

impl Agreed {
    fn on<W: Worker + ?Sized>(seat: &Seat<'_, W>, what: Agreement<'_>) -> Agreed {
        let words = match what {
            Agreement::Batch(b) => {
                let logits = match b.logits {
                    Logits::None => 0,
                    Logits::Last => 1,
                    Logits::All => 2,
                };
                [0, b.tokens.len() as u64, b.pos as u64, logits, fnv(b.tokens)]
            }
            Agreement::Generation(p) => [1, p.prompt.len() as u64, p.start_pos as u64, p.prefill_batch as u64, fnv(p.prompt)],
        };
        seat.agree_on(words);
        Agreed(())
    }
}

/// FNV-1a of token ids.
fn fnv(tokens: &[u32]) -> u64 {
    tokens.iter().flat_map(|t| t.to_le_bytes()).fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// [`forward`], with the proof that every seat runs this batch, or `None` to
/// check it here (one barrier).
fn run<W: Worker + ?Sized>(seat: &Seat<'_, W>, scratch: &mut Scratch, batch: &Batch<'_>, agreed: Option<Agreed>) {
    let (state, worker) = (seat.state(), seat.worker());
    let cfg = &seat.model().config;
    let n = batch.tokens.len();
    assert!(n >= 1 && n <= state.cfg.max_batch, "batch of {n} tokens (state holds {})", state.cfg.max_batch);
    assert!(batch.pos + n <= state.cfg.n_ctx, "positions {}..{} exceed the context of {}", batch.pos, batch.pos + n, state.cfg.n_ctx);
    assert!(batch.tokens.iter().all(|&t| (t as usize) < cfg.n_vocab), "token id outside the vocabulary");
    if batch.logits == Logits::All {
        assert!(n <= state.cfg.logit_rows, "{n} logit rows asked, state holds {}", state.cfg.logit_rows);
    }

    worker.phase_begin(Phase::Embed);
    let agreed = agreed.unwrap_or_else(|| Agreed::on(seat, Agreement::Batch(batch)));
    let pass = Pass::begin(seat, batch.tokens, batch.pos, agreed);
    pass.embed(batch.tokens); // x = token embeddings
    worker.phase_end(Phase::Embed);
    seat.barrier();

    for layer in 0..cfg.n_layers {
        let w = worker.acquire_layer(layer);

        worker.phase_begin(Phase::Attention { layer });
        pass.normalize(w.attn_norm, scratch); // xb = rmsnorm(x) · attn_norm
        let heads = pass.heads(); // this seat's query, key and value heads
        pass.project_qkv(&w, &heads, layer, scratch); // q, k, v = xb·Wq, xb·Wk, xb·Wv
        pass.add_bias_and_rope(&w, &heads, layer, scratch); // + biases; RoPE on q and k
        pass.store_keys(&heads, layer, scratch); // k -> K cache (v went to the V cache)
        seat.barrier();
        pass.attend(layer, scratch); // att = softmax(q·kᵀ · scale) · v, per (token, head)
        seat.barrier();
        pass.add_projection(&w.wo, &state.att, scratch); // x += att·Wo (post = att·Wo)
        if cfg.post_norms {
            seat.barrier();
            pass.add_post_norm(w.post_attn_norm, scratch); // x += rmsnorm(post) · post_attn_norm
        }
        worker.phase_end(Phase::Attention { layer });
        seat.barrier();

        worker.phase_begin(Phase::Ffn { layer });
        pass.normalize(w.ffn_norm, scratch); // xb = rmsnorm(x) · ffn_norm
        pass.gate_up(&w, scratch); // hb = silu(xb·Wgate) * (xb·Wup)
        seat.barrier();
        pass.add_projection(&w.w_down, &state.hb, scratch); // x += hb·Wdown (post = hb·Wdown)
        if cfg.post_norms {
            seat.barrier();
            pass.add_post_norm(w.post_ffn_norm, scratch); // x += rmsnorm(post) · post_ffn_norm
        }
        worker.release_layer(layer);
        worker.phase_end(Phase::Ffn { layer });
        seat.barrier();
    }

    if let Some(tokens) = batch.logits.tokens(n) {
        worker.phase_begin(Phase::Output);
        pass.logits(tokens, scratch); // logits = (rmsnorm(x) · output_norm) · Wout
        worker.phase_end(Phase::Output);
        seat.barrier();
    }
}

#[cfg(test)]
mod tests;
