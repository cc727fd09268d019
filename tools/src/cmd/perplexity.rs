//! `axiom perplexity`: perplexity of a text file, computed as llama.cpp's
//! `llama-perplexity` does: the text is tokenized once (BOS added if the
//! model asks), cut into chunks of `--ctx` tokens, each evaluated from an
//! empty cache (its first token replaced by BOS when the model adds BOS), and
//! only the second half of each chunk is scored (every token there has at
//! least ctx/2 tokens of context). Prints `[1]ppl,[2]ppl,...` as it goes and
//! `Final estimate: PPL = X +/- Y`; a JSON statistics line goes to stderr.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use axiom_engine::forward::{forward, Batch, Logits};
use axiom_engine::state::{SharedState, StateConfig};
use serde_json::json;

use crate::host::{with_engine, Engine, EngineArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    engine: EngineArgs,
    /// The text file to score.
    #[arg(long)]
    file: std::path::PathBuf,
    /// Tokens per chunk.
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Score at most this many chunks [default: all].
    #[arg(long)]
    chunks: Option<usize>,
}

/// `log p(target)` under the softmax of `logits`, as llama.cpp's
/// `log_softmax` (max-shifted, sum of exp in f64).
fn log_prob(logits: &[f32], target: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    (logits[target] - max) as f64 - sum.ln()
}

pub fn main(args: Args) -> Result<i32> {
    with_engine(&args.engine, |engine| perplexity(&args, engine))
}

fn perplexity(args: &Args, engine: &Engine<'_>) -> Result<i32> {
    let model = &engine.model;
    let tokenizer = engine.tokenizer()?;
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let n_ctx = args.ctx;
    if n_ctx < 4 || n_ctx > model.config.n_ctx_train {
        bail!("--ctx must be between 4 and the model's context of {}", model.config.n_ctx_train);
    }
    let mut tokens = tokenizer.encode(&text, true, false);
    if tokens.len() < 2 * n_ctx {
        bail!("{} tokenizes to {} tokens: at least {} (2 x --ctx) are needed", args.file.display(), tokens.len(), 2 * n_ctx);
    }
    let n_chunks = (tokens.len() / n_ctx).min(args.chunks.unwrap_or(usize::MAX));
    let bos = if tokenizer.add_bos() { tokenizer.special_tokens().bos } else { None };

    let batch = engine.batch.min(n_ctx);
    let state_cfg = StateConfig { n_ctx, max_batch: batch, logit_rows: batch, kv_type: engine.kv_type };
    let mut memory = engine.state_memory(&state_cfg)?;
    let mut state = SharedState::new(model, state_cfg, &mut memory)?;
    let layers = engine.weights.source();
    let mut team = engine.team(&state_cfg);
    let vocab = model.config.n_vocab;
    let first = n_ctx / 2;

    let (mut nll, mut nll2, mut count) = (0f64, 0f64, 0usize);
    let start = Instant::now();
    let mut out = std::io::stdout().lock();
    for c in 0..n_chunks {
        let chunk = &mut tokens[c * n_ctx..(c + 1) * n_ctx];
        let original_first = chunk[0];
        if let Some(b) = bos {
            chunk[0] = b;
        }
        let chunk: &[u32] = chunk;
        for (b, piece) in chunk.chunks(batch).enumerate() {
            let pos = b * batch;
            team.run(model, &state, layers, |seat, scratch| forward(seat, scratch, &Batch { tokens: piece, pos, logits: Logits::All }));
            let logits = state.logits();
            for (i, row) in logits.chunks_exact(vocab).take(piece.len()).enumerate() {
                let j = pos + i;
                if j >= first && j + 1 < n_ctx {
                    let lp = log_prob(row, chunk[j + 1] as usize);
                    nll -= lp;
                    nll2 += lp * lp;
                    count += 1;
                }
            }
        }
        tokens[c * n_ctx] = original_first;
        write!(out, "[{}]{:.4},", c + 1, (nll / count as f64).exp())?;
        out.flush()?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mean = nll / count as f64;
    let ppl = mean.exp();
    let var = nll2 / count as f64 - mean * mean;
    let err = if var > 0.0 && count > 1 { (var / (count - 1) as f64).sqrt() * ppl } else { 0.0 };
    writeln!(out)?;
    writeln!(out, "Final estimate: PPL = {ppl:.4} +/- {err:.5}")?;
    eprintln!(
        "{}",
        json!({
        "chunks": n_chunks,
        "ctx": n_ctx,
        "tokens_scored": count,
        "ppl": ppl,
        "ppl_err": err,
        "tok_s": ((n_chunks * n_ctx) as f64 / elapsed * 100.0).round() / 100.0,
        "threads": engine.threads,
        "isa": model.kernels.isa().name(),
        })
    );
    Ok(0)
}
