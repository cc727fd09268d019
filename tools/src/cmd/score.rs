//! `axiom score`: teacher-forced logits over a token sequence, one JSON line
//! per position: `{"pos":i,"top_ids":[...],"top_logits":[...]}` (the shape of
//! the llama.cpp goldens in shared/testdata/smollm2), where position `i`
//! holds the model's prediction for the token after token `i`.

use std::io::Write;

use anyhow::{bail, Context, Result};
use axiom_engine::forward::{forward, Batch, Logits};
use axiom_engine::state::{SharedState, StateConfig};
use serde_json::json;

use crate::host::{with_engine, Engine, EngineArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    engine: EngineArgs,
    /// Text to score (special tokens such as `<|im_start|>` are parsed).
    #[arg(long, conflicts_with = "ids", required_unless_present = "ids")]
    prompt: Option<String>,
    /// Token ids to score, comma-separated (no tokenizer needed).
    #[arg(long, value_delimiter = ',')]
    ids: Option<Vec<u32>>,
    /// How many of the most likely tokens to print per position.
    #[arg(long, default_value_t = 5)]
    top: usize,
}

pub fn main(args: Args) -> Result<i32> {
    with_engine(&args.engine, |engine| score(&args, engine))
}

fn score(args: &Args, engine: &Engine<'_>) -> Result<i32> {
    let model = &engine.model;
    let vocab = model.config.n_vocab;
    let tokens: Vec<u32> = match (&args.prompt, &args.ids) {
        (Some(text), None) => engine.tokenizer()?.encode(text, true, true),
        (None, Some(ids)) => ids.clone(),
        _ => bail!("give either --prompt TEXT or --ids 1,2,3"),
    };
    if tokens.is_empty() {
        bail!("nothing to score: the input has no tokens");
    }
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
        bail!("token id {bad} is outside the vocabulary (0..{vocab})");
    }
    if tokens.len() > model.config.n_ctx_train {
        bail!("{} tokens exceed the model's context of {}", tokens.len(), model.config.n_ctx_train);
    }
    if args.top == 0 || args.top > vocab {
        bail!("--top must be between 1 and {vocab}");
    }

    let batch = engine.batch.min(tokens.len());
    let state_cfg = StateConfig { n_ctx: tokens.len(), max_batch: batch, logit_rows: batch, kv_type: engine.kv_type };
    let mut memory = engine.state_memory(&state_cfg)?;
    let mut state = SharedState::new(model, state_cfg, &mut memory)?;
    let layers = engine.weights.source();
    let mut team = engine.team(&state_cfg);

    let mut out = std::io::stdout().lock();
    let mut order: Vec<u32> = Vec::with_capacity(vocab);
    for (c, chunk) in tokens.chunks(batch).enumerate() {
        let pos = c * batch;
        team.run(model, &state, layers, |seat, scratch| forward(seat, scratch, &Batch { tokens: chunk, pos, logits: Logits::All }));
        let logits = state.logits();
        for (i, row) in logits.chunks_exact(vocab).take(chunk.len()).enumerate() {
            let top = top_k(row, args.top, &mut order);
            let line = json!({
                "pos": pos + i,
                "top_ids": top,
                "top_logits": top.iter().map(|&id| shortest(row[id as usize])).collect::<Vec<f64>>(),
            });
            if let Err(e) = writeln!(out, "{line}") {
                return stdout_closed(e);
            }
        }
    }
    if let Err(e) = out.flush() {
        return stdout_closed(e);
    }
    Ok(0)
}

/// A reader that stopped reading (`| head`) is not an error.
fn stdout_closed(e: std::io::Error) -> Result<i32> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(0)
    } else {
        Err(e).context("writing to stdout")
    }
}

/// The f64 with the f32's shortest decimal form, so JSON shows `27.2234`
/// rather than the widened `27.223400115966797`.
fn shortest(x: f32) -> f64 {
    format!("{x}").parse().unwrap_or(x as f64)
}

/// The `k` largest logits' ids, largest first (ties: lower id first).
fn top_k<'o>(row: &[f32], k: usize, order: &'o mut Vec<u32>) -> &'o [u32] {
    order.clear();
    order.extend(0..row.len() as u32);
    let by = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
    if k < order.len() {
        order.select_nth_unstable_by(k - 1, by);
    }
    order.truncate(k);
    order.sort_unstable_by(by);
    order
}
