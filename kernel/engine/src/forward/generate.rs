//! Text generation as one SPMD loop: the prompt in prefill batches, then one
//! token per step. Every worker runs [`generate`]; the leader (worker 0) also
//! samples, hands each token to its [`TokenSink`] and publishes the next token
//! (or the stop) to the team between steps. The kernel's compute cores and the
//! host's threads run this same loop, so they produce the same tokens.

use core::fmt;
use core::sync::atomic::Ordering;

use super::{run, Agreed, Agreement, Batch, Logits};
use crate::sampler::Sampler;
use crate::state::Scratch;
use crate::team::{Seat, Worker};

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct GenerateParams<'a> {
    /// Prompt tokens (at least one).
    pub prompt: &'a [u32],
    /// Position of the first prompt token: 0 for a fresh context, or the
    /// previous [`GenerateOutcome::end_pos`] to continue a conversation on the
    /// cached keys and values.
    pub start_pos: usize,
    /// Most tokens to generate.
    pub max_new_tokens: usize,
    /// Tokens that end generation (EOS, EOT); they are not passed to the sink.
    pub stop_tokens: &'a [u32],
    /// Tokens per prefill forward call (at most the state's `max_batch`).
    pub prefill_batch: usize,
}

/// Receives the leader's output as it is produced.
pub trait TokenSink {
    /// The prompt has been processed; the first token is being sampled.
    fn prefill_done(&mut self, _prompt_tokens: usize) {}
    /// A generated token; return `false` to stop.
    fn token(&mut self, id: u32) -> bool;
}

/// The leader's extra duties.
pub struct Leader<'a> {
    pub sampler: &'a mut Sampler,
    pub sink: &'a mut (dyn TokenSink + Send),
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// A stop token was sampled.
    StopToken,
    /// `max_new_tokens` were generated.
    Limit,
    /// The sink asked to stop.
    Sink,
    /// The context is full.
    ContextFull,
}

/// How a generation ended (the same on every worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenerateOutcome {
    pub generated: usize,
    pub stop: StopReason,
    /// The next free position: where a continuation starts.
    pub end_pos: usize,
}

/// Input the loop refuses before starting (every worker sees the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenerateError {
    EmptyPrompt,
    /// The prompt does not fit in the context.
    PromptTooLong { prompt: usize, start_pos: usize, n_ctx: usize },
    /// A prompt token id outside the vocabulary.
    BadToken { id: u32, n_vocab: usize },
    /// `prefill_batch` is 0 or larger than the state's `max_batch`.
    BadBatch { batch: usize, max: usize },
}

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GenerateError::EmptyPrompt => write!(f, "the prompt is empty (at least one token is needed)"),
            GenerateError::PromptTooLong { prompt, start_pos, n_ctx } => {
                write!(f, "a prompt of {prompt} tokens at position {start_pos} does not fit the context of {n_ctx} tokens")
            }
            GenerateError::BadToken { id, n_vocab } => write!(f, "token id {id} is outside the vocabulary of {n_vocab}"),
            GenerateError::BadBatch { batch, max } => write!(f, "prefill batch {batch} must be between 1 and {max}"),
        }
    }
}

impl core::error::Error for GenerateError {}

const REASONS: [StopReason; 4] = [StopReason::StopToken, StopReason::Limit, StopReason::Sink, StopReason::ContextFull];

/// Runs a whole generation from every seat of the team. Seat 0 must pass
/// `Some(leader)`, the others `None`.
pub fn generate<W: Worker + ?Sized>(seat: &mut Seat<'_, W>, scratch: &mut Scratch, params: &GenerateParams<'_>, mut leader: Option<Leader<'_>>) -> Result<GenerateOutcome, GenerateError> {
    assert_eq!(seat.index() == 0, leader.is_some(), "seat 0, and only seat 0, leads");
    // Every batch below derives from these parameters and the tokens the
    // leader publishes: one check for the whole generation.
    let agreed = Agreed::on(seat, Agreement::Generation(params));
    let (model, state) = (seat.model(), seat.state());
    let n_ctx = state.cfg.n_ctx;
    let n_vocab = model.config.n_vocab;
    let prompt = params.prompt;
    if prompt.is_empty() {
        return Err(GenerateError::EmptyPrompt);
    }
    if params.start_pos + prompt.len() > n_ctx {
        return Err(GenerateError::PromptTooLong { prompt: prompt.len(), start_pos: params.start_pos, n_ctx });
    }
    if let Some(&id) = prompt.iter().find(|&&t| t as usize >= n_vocab) {
        return Err(GenerateError::BadToken { id, n_vocab });
    }
    if params.prefill_batch == 0 || params.prefill_batch > state.cfg.max_batch {
        return Err(GenerateError::BadBatch { batch: params.prefill_batch, max: state.cfg.max_batch });
    }

    let mut pos = params.start_pos;
    let chunks = prompt.len().div_ceil(params.prefill_batch);
    for (i, chunk) in prompt.chunks(params.prefill_batch).enumerate() {
        let logits = if i + 1 == chunks { Logits::Last } else { Logits::None };
        run(seat, scratch, &Batch { tokens: chunk, pos, logits }, Some(agreed));
        pos += chunk.len();
    }
    if let Some(l) = leader.as_mut() {
        l.sink.prefill_done(prompt.len());
        for &t in prompt {
            l.sampler.accept(t);
        }
    }

    let control = &state.control;
    let mut generated = 0usize;
    loop {
        if let Some(l) = leader.as_mut() {
            // The others wait at the barrier below: the logits are the
            // leader's alone until then.
            let logits = seat.leader_logits().expect("the leader is seat 0");
            let token = l.sampler.sample(&mut logits[..n_vocab]);
            let stop = if params.stop_tokens.contains(&token) {
                Some(StopReason::StopToken)
            } else {
                generated += 1;
                l.sampler.accept(token);
                if !l.sink.token(token) {
                    Some(StopReason::Sink)
                } else if generated >= params.max_new_tokens {
                    Some(StopReason::Limit)
                } else if pos >= n_ctx {
                    Some(StopReason::ContextFull)
                } else {
                    None
                }
            };
            control.token.store(token, Ordering::Relaxed);
            control.generated.store(generated as u32, Ordering::Relaxed);
            control.stop.store(stop.map_or(0, |r| 1 + REASONS.iter().position(|&x| x == r).unwrap_or(0) as u8), Ordering::Relaxed);
        }
        seat.barrier();
        let stop = control.stop.load(Ordering::Relaxed);
        generated = control.generated.load(Ordering::Relaxed) as usize;
        if stop != 0 {
            return Ok(GenerateOutcome { generated, stop: REASONS[(stop - 1) as usize], end_pos: pos });
        }
        let token = control.token.load(Ordering::Relaxed);
        run(seat, scratch, &Batch { tokens: &[token], pos, logits: Logits::Last }, Some(agreed));
        pos += 1;
    }
}
