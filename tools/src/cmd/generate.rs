//! `axiom generate`: text generation on the host with the engine.
//!
//! The generated text streams to stdout as it is produced; statistics go to
//! stderr, ending with one JSON line
//! `{"prefill_tokens":..,"prefill_tok_s":..,"decode_tokens":..,"decode_tok_s":..,...,"ids":[..]}`
//! (`ids`: the generated token ids, which the QEMU tests compare with the kernel's).
//! `decode_tok_s` is measured from the first generated token to the last
//! (the forward passes of batch 1 between them); `prefill_tok_s` over the
//! prompt's forward passes.

use std::io::{BufRead, Write};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use axiom_engine::conversation::{Conversation, ConversationError, TurnPlan};
use axiom_engine::forward::{generate, GenerateParams, Leader, StopReason, TokenSink};
use axiom_engine::sampler::{Sampler, SamplerConfig};
use axiom_engine::state::{SharedState, StateBytes, StateConfig};
use axiom_engine::tokenizer::{ChatMessage, Tokenizer, Utf8Stream};

use crate::host::{with_engine, Engine, EngineArgs, HostTeam};

/// `--interactive`'s context without `--ctx`: the kernel's `ctx=` default.
const CHAT_CTX: usize = 512;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    engine: EngineArgs,
    /// The prompt. Special tokens written in it (`<|im_start|>`) are parsed as special tokens.
    #[arg(long, required_unless_present_any = ["messages", "interactive"], conflicts_with_all = ["messages", "interactive"])]
    prompt: Option<String>,
    /// A conversation to answer: a JSON list of `{"role": .., "content": ..}`
    /// (`system` first, optional; then `user` and `assistant` alternating,
    /// ending with `user`), inline or `@FILE`. The context is the whole
    /// conversation, as the kernel's `interactive=1` keeps it: with the same
    /// turns, the answer is the kernel's.
    #[arg(long, conflicts_with = "interactive")]
    messages: Option<String>,
    /// One conversation from stdin, a line per turn, as the kernel's
    /// `interactive=1` holds it: each turn evaluates only its new tokens
    /// (the cache of earlier turns is reused); `/reset`, `/stats`, `/quit`.
    /// A statistics line per answer on stderr.
    #[arg(long)]
    interactive: bool,
    /// Wrap the prompt (or the messages) in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    tokens: usize,
    /// Sampling temperature; 0 = greedy.
    #[arg(long, default_value_t = 0.8)]
    temp: f32,
    /// Nucleus sampling: keep the most likely tokens up to this probability mass (1 = off).
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Keep only the K most likely tokens (0 = off).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Repetition penalty over the last 64 tokens (1 = off).
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// RNG seed [default: from the clock; printed in the statistics].
    #[arg(long)]
    seed: Option<u64>,
    /// Keep generating past end-of-generation tokens (for benchmarks).
    #[arg(long)]
    ignore_eos: bool,
    /// Context length [default: prompt + tokens, at most the model's; with --interactive, 512].
    #[arg(long)]
    ctx: Option<usize>,
}

/// Streams pieces to stdout and keeps the timings.
struct Stream<'t> {
    tokenizer: &'t Tokenizer,
    utf8: Utf8Stream,
    text: String,
    start: Instant,
    prefill_done: Option<Instant>,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    generated: usize,
    ids: Vec<u32>,
    io_error: Option<std::io::Error>,
}

impl TokenSink for Stream<'_> {
    fn prefill_done(&mut self, _prompt_tokens: usize) {
        self.prefill_done = Some(Instant::now());
    }

    fn token(&mut self, id: u32) -> bool {
        let now = Instant::now();
        self.first_token.get_or_insert(now);
        self.last_token = Some(now);
        self.generated += 1;
        self.ids.push(id);
        self.text.clear();
        self.utf8.push(self.tokenizer.token_piece(id), &mut self.text);
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(self.text.as_bytes()).and_then(|_| out.flush()) {
            // stdout closed (e.g. piped into `head`): stop generating.
            self.io_error = Some(e);
            return false;
        }
        true
    }
}

pub fn main(args: Args) -> Result<i32> {
    if !(args.temp >= 0.0 && args.temp.is_finite()) {
        bail!("--temp must be a number >= 0");
    }
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        bail!("--top-p must be in (0, 1]");
    }
    if !(args.repeat_penalty > 0.0 && args.repeat_penalty.is_finite()) {
        bail!("--repeat-penalty must be a positive number");
    }
    if args.tokens == 0 {
        bail!("--tokens must be at least 1");
    }

    with_engine(&args.engine, |engine| generate_text(&args, engine))
}

fn generate_text(args: &Args, engine: &Engine<'_>) -> Result<i32> {
    let model = &engine.model;
    let tokenizer = engine.tokenizer()?;
    let seed = args.seed.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0));
    if args.interactive {
        return chat(args, engine, &tokenizer, seed);
    }
    let owned_messages = match (&args.prompt, &args.messages) {
        (_, Some(json)) => read_messages(json)?,
        (Some(prompt), None) => vec![(String::from("user"), prompt.clone())],
        (None, None) => bail!("give --prompt, --messages or --interactive"),
    };
    let messages: Vec<ChatMessage<'_>> = owned_messages.iter().map(|(role, content)| ChatMessage { role, content }).collect();
    // Without --ctx, the context is as long as this answer needs (the
    // conversation is planned in the model's training context).
    let n_ctx_train = model.config.n_ctx_train.max(1);
    let (mut conversation, user) = Conversation::from_messages(&tokenizer, args.chat, &messages, args.ctx.unwrap_or(n_ctx_train))?;
    let plan = conversation.plan(&tokenizer, user, args.tokens)?;
    warn_dropped(&plan);
    let n_ctx = args.ctx.unwrap_or(plan.tokens.len() + plan.max_new);
    let state_cfg = StateConfig { n_ctx, max_batch: engine.batch.min(plan.tokens.len()), logit_rows: 1, kv_type: engine.kv_type };
    let mut memory = engine.state_memory(&state_cfg)?;
    let state = SharedState::new(model, state_cfg, &mut memory)?;
    let mut team = engine.team(&state_cfg);
    answer(args, engine, &tokenizer, &mut team, &state, &plan, seed)?;
    Ok(0)
}

fn warn_dropped(plan: &TurnPlan) {
    if plan.dropped_turns > 0 {
        eprintln!(
            "axiom generate: warning: the context is full: dropped the oldest {} turn(s), kept the system prompt; evaluating the {} tokens after it again",
            plan.dropped_turns,
            plan.new_tokens().len()
        );
    }
}

/// What one answer generated.
struct Answered {
    ids: Vec<u32>,
    /// The next free position (the generation's `end_pos`).
    end_pos: usize,
    prefill_tok_s: f64,
    decode_tok_s: f64,
}

/// Generates the answer `plan` prepares, evaluating its new tokens from
/// `plan.start_pos()` on the cache `state` holds; streams the text to stdout
/// and the statistics to stderr.
fn answer(args: &Args, engine: &Engine<'_>, tokenizer: &Tokenizer, team: &mut HostTeam, state: &SharedState<'_>, plan: &TurnPlan, seed: u64) -> Result<Answered> {
    let model = &engine.model;
    let prompt = plan.new_tokens();
    let sampler_cfg = SamplerConfig { temperature: args.temp, top_k: args.top_k, top_p: args.top_p, repetition_penalty: args.repeat_penalty, repeat_last_n: 64, seed };
    let mut sampler = Sampler::new(sampler_cfg, model.config.n_vocab);
    let start = Instant::now();
    let mut sink = Stream {
        tokenizer,
        utf8: Utf8Stream::default(),
        text: String::new(),
        start,
        prefill_done: None,
        first_token: None,
        last_token: None,
        generated: 0,
        ids: Vec::new(),
        io_error: None,
    };
    let params = GenerateParams {
        prompt,
        start_pos: plan.start_pos(),
        max_new_tokens: plan.max_new,
        stop_tokens: if args.ignore_eos { &[] } else { tokenizer.eog_ids() },
        prefill_batch: state.config().max_batch.min(prompt.len()),
    };
    let layers = engine.weights.source();
    let leader = Mutex::new(Some(Leader { sampler: &mut sampler, sink: &mut sink }));
    let outcome = team.run(model, state, layers, |seat, scratch| {
        let lead = if seat.index() == 0 { leader.lock().unwrap().take() } else { None };
        generate(seat, scratch, &params, lead)
    });
    let outcome = outcome?;
    let mut tail = String::new();
    sink.utf8.finish(&mut tail);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(tail.as_bytes()).and_then(|_| out.write_all(b"\n")).and_then(|_| out.flush());
    drop(out);

    let prefill_s = sink.prefill_done.map(|t| (t - sink.start).as_secs_f64()).unwrap_or(0.0);
    let decode_s = match (sink.first_token, sink.last_token) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    let decode_steps = sink.generated.saturating_sub(1);
    let rate = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    let stop = match outcome.stop {
        StopReason::StopToken => "eos",
        StopReason::Limit => "limit",
        StopReason::Sink => "output-closed",
        StopReason::ContextFull => "context-full",
    };
    eprintln!(
        "axiom generate: {} prompt tokens in {:.1} ms ({} reused from the cache), {} tokens generated ({stop}), {} threads, {} kernels, seed {seed}",
        prompt.len(),
        prefill_s * 1e3,
        plan.reused,
        sink.generated,
        engine.threads,
        model.kernels.isa()
    );
    // Key order as issue 3 specifies it (serde_json would sort the keys);
    // `prefill_tokens` are the evaluated ones, `reused_tokens` those of the
    // context (`context_tokens`) the cache already held.
    eprintln!(
        "{{\"prefill_tokens\":{},\"prefill_tok_s\":{:.2},\"decode_tokens\":{},\"decode_tok_s\":{:.2},\"ttft_ms\":{:.2},\"threads\":{},\"isa\":\"{}\",\"seed\":{},\"stop\":\"{}\",\"kv_type\":\"{}\",\"kv_bytes_per_token\":{},\"context_tokens\":{},\"reused_tokens\":{},\"ids\":{:?}}}",
        prompt.len(),
        rate(prompt.len(), prefill_s),
        sink.generated,
        rate(decode_steps, decode_s),
        sink.first_token.map(|t| (t - sink.start).as_secs_f64() * 1e3).unwrap_or(0.0),
        engine.threads,
        model.kernels.isa().name(),
        seed,
        stop,
        state.config().kv_type,
        StateBytes::new(&model.config, state.config()).map_or(0, |b| b.kv_per_token),
        plan.tokens.len(),
        plan.reused,
        sink.ids
    );
    if let Some(e) = sink.io_error {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e).context("writing to stdout");
        }
    }
    Ok(Answered { ids: sink.ids, end_pos: outcome.end_pos, prefill_tok_s: rate(prompt.len(), prefill_s), decode_tok_s: rate(decode_steps, decode_s) })
}

/// `--interactive`: one conversation from stdin, a line per turn, as the
/// kernel's `interactive=1` holds it (the cache of earlier turns reused,
/// the oldest turns dropped when the context fills); `/reset`, `/stats`,
/// `/quit`. Lines are read as bytes: one that is not UTF-8 is refused with
/// a warning and the next is read.
fn chat(args: &Args, engine: &Engine<'_>, tokenizer: &Tokenizer, seed: u64) -> Result<i32> {
    let model = &engine.model;
    // The kernel's default context (ctx=512), within the model's.
    let n_ctx = args.ctx.unwrap_or(CHAT_CTX).min(model.config.n_ctx_train.max(16));
    let state_cfg = StateConfig { n_ctx, max_batch: engine.batch, logit_rows: 1, kv_type: engine.kv_type };
    let mut memory = engine.state_memory(&state_cfg)?;
    let state = SharedState::new(model, state_cfg, &mut memory)?;
    let mut team = engine.team(&state_cfg);
    let mut conversation = Conversation::new(tokenizer, args.chat, None, n_ctx)?;
    let mut input = std::io::stdin().lock();
    let mut line = Vec::new();
    let mut last: Option<(f64, f64)> = None;
    eprintln!("axiom generate: one conversation, a line per turn (context {n_ctx} tokens); /reset starts over, /stats, /quit or end of input ends");
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).context("reading stdin")? == 0 {
            return Ok(0);
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            eprintln!("axiom generate: warning: input line is not valid UTF-8: ignored");
            continue;
        };
        match text.trim() {
            "" => {}
            "/quit" => return Ok(0),
            "/reset" => {
                conversation.reset();
                eprintln!("axiom generate: conversation reset");
            }
            "/stats" => {
                let (prefill, decode) = last.unwrap_or_default();
                eprintln!(
                    "axiom generate: stats: {} turns in the context, {}/{n_ctx} context tokens cached; last answer: prefill {prefill:.2} tokens/s, decode {decode:.2} tokens/s",
                    conversation.turns().len(),
                    conversation.cached_tokens()
                );
            }
            user => {
                let plan = match conversation.plan(tokenizer, user, args.tokens) {
                    Ok(p) => p,
                    Err(e @ (ConversationError::TooLong { .. } | ConversationError::Empty)) => {
                        eprintln!("axiom generate: warning: {e}: line ignored");
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                warn_dropped(&plan);
                let answered = answer(args, engine, tokenizer, &mut team, &state, &plan, seed)?;
                last = Some((answered.prefill_tok_s, answered.decode_tok_s));
                conversation.finish(tokenizer, plan, user, &answered.ids, answered.end_pos);
            }
        }
    }
}

/// The `--messages` list (inline JSON, or `@FILE`) as (role, content) pairs.
fn read_messages(arg: &str) -> Result<Vec<(String, String)>> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading --messages file {path}"))?,
        None => arg.to_string(),
    };
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Message {
        role: String,
        content: String,
    }
    let list: Vec<Message> = serde_json::from_str(&text).context("--messages must be a JSON list of {\"role\": .., \"content\": ..}")?;
    for m in &list {
        if !["system", "user", "assistant"].contains(&m.role.as_str()) {
            bail!("--messages: role {:?} is not system, user or assistant", m.role);
        }
    }
    Ok(list.into_iter().map(|m| (m.role, m.content)).collect())
}
