//! One conversation, one answer at a time: plan the turn with the engine's
//! [`Conversation`] (the context is the whole conversation; the tokens the KV
//! cache holds from earlier turns are reused, only the new ones evaluated),
//! launch the compute team (and the I/O core beside it when streaming) on the
//! engine's `generate` from the first new position, stream the tokens to
//! serial as they come, then report the timings.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use axiom_engine::conversation::{Conversation, ConversationError, TurnPlan};
use axiom_engine::forward::{generate, GenerateOutcome, GenerateParams, Leader, StopReason, TokenSink};
use axiom_engine::model::Model;
use axiom_engine::sampler::{Sampler, SamplerConfig};
use axiom_engine::state::{Scratch, SharedState, StateConfig};
use axiom_engine::team::Team as EngineTeam;
use axiom_engine::tokenizer::{Tokenizer, Utf8Stream};
use axiom_hw::time as tsc;

use super::args::{InferArgs, Telemetry};
use super::io::{IoStats, IoWake, Streamer};
use super::report::{self, CoreReport};
use super::screen_view::{self, ScreenView};
use super::stop_with_error;
use super::team::{KernelWorker, TeamShared};
use crate::tensor_plan::Mode;
use crate::telemetry::events::{ChatStats, Prompt, Token};
use crate::{print, println, smp, telemetry};

/// Everything the answers share, set up once at boot and kept for the run.
pub struct Team {
    pub compute: Vec<usize>,
    /// The I/O core, when it streams.
    pub io_cpu: Option<usize>,
    /// An I/O core exists but has nothing to do (resident mode).
    pub io_core_idle: bool,
    pub model: &'static Model<'static>,
    pub state: &'static SharedState<'static>,
    pub state_cfg: StateConfig,
    pub tokenizer: &'static Tokenizer,
    /// What the compute cores share: the ring, layouts, repacked layers.
    pub shared: TeamShared,
    pub streamer: &'static spin::Mutex<Streamer<'static>>,
    pub io_wake: &'static IoWake,
    pub mode: Mode,
}

impl Team {
    fn resident(&self) -> bool {
        self.mode == Mode::Resident
    }
}

pub struct Session {
    chat: bool,
    tokens: usize,
    sampler: SamplerConfig,
    telemetry: Telemetry,
    /// Forward passes run so far (streaming tickets continue across answers).
    passes: u64,
    answers: usize,
    conversation: Conversation,
    /// Turns since the start or the last `/reset`.
    turn: u64,
    dropped_turns: u64,
    /// The last answer's speeds, and sums over the run (for `/stats`).
    last: Option<report::Speeds>,
    evaluated_tokens: u64,
    reused_tokens: u64,
    generated_tokens: u64,
}

/// What an interactive line did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// An answer or a command ran: prompt for the next line.
    Done,
    /// An empty line: nothing to do.
    Idle,
    /// `/quit`.
    Quit,
}

/// Why a line got no answer.
pub enum AnswerError {
    /// The line cannot be answered (too long for the context, no tokens):
    /// in interactive mode the next line may do better.
    Input(String),
    /// The run cannot go on.
    Fatal(String),
}

impl From<String> for AnswerError {
    fn from(msg: String) -> Self {
        AnswerError::Fatal(msg)
    }
}

impl From<&str> for AnswerError {
    fn from(msg: &str) -> Self {
        AnswerError::Fatal(String::from(msg))
    }
}

/// The leader's sink: `@token` per token (or raw text with telemetry off).
struct SerialSink {
    tokenizer: &'static Tokenizer,
    utf8: Utf8Stream,
    piece: String,
    telemetry: Telemetry,
    start_ns: u64,
    prefill_ns: Option<u64>,
    token_ns: Vec<u64>,
    /// The generated ids, for the conversation.
    ids: Vec<u32>,
    text: String,
    /// The answer on the screen.
    screen: ScreenView,
}

impl TokenSink for SerialSink {
    fn prefill_done(&mut self, _prompt_tokens: usize) {
        self.prefill_ns = Some(tsc::now_ns());
    }

    fn token(&mut self, id: u32) -> bool {
        let now = tsc::now_ns();
        let since = self.token_ns.last().copied().unwrap_or(self.start_ns);
        if self.token_ns.len() < self.token_ns.capacity() {
            self.token_ns.push(now);
        }
        self.ids.push(id);
        self.piece.clear();
        self.utf8.push(self.tokenizer.token_piece(id), &mut self.piece);
        if self.text.len() + self.piece.len() <= self.text.capacity() {
            self.text.push_str(&self.piece);
        }
        let i = self.token_ns.len() - 1;
        match self.telemetry {
            Telemetry::Off => print!("{}", self.piece),
            _ => telemetry::emit(&Token { i: i as u64, id, text: self.piece.as_str().into(), us: (now - since) / 1000 }),
        }
        self.screen.token(&self.piece, now);
        true
    }
}

/// What one answer's launch shares between its CPUs.
struct Answer {
    /// The tokens to evaluate, from position `start_pos` (the cache holds
    /// the conversation's tokens before it).
    prompt: Vec<u32>,
    start_pos: usize,
    max_new_tokens: usize,
    prefill_batch: usize,
    /// Forward-pass number the launch starts at; passes it may run at most.
    first_pass: u64,
    max_passes: usize,
    /// Worker 0 ends the I/O core's streaming.
    stop: AtomicBool,
    /// Worker 0's sampler and sink, handed back after the launch.
    leader: spin::Mutex<Option<(Sampler, SerialSink)>>,
    result: spin::Mutex<LaunchResult>,
    /// The engine's team for this answer: one seat per compute core.
    engine: EngineTeam<'static>,
}

/// What the compute cores hand back after a launch.
struct LaunchResult {
    outcome: Option<GenerateOutcome>,
    cores: Vec<Option<CoreReport>>,
    passes: usize,
}

impl Session {
    pub fn new(args: &InferArgs, team: &Team) -> Result<Session, String> {
        let conversation = Conversation::new(team.tokenizer, args.chat, None, team.state_cfg.n_ctx).map_err(|e| alloc::format!("{e}"))?;
        Ok(Session {
            chat: args.chat,
            tokens: args.tokens,
            sampler: SamplerConfig { temperature: args.temp, top_k: args.top_k, top_p: args.top_p, repetition_penalty: args.repeat_penalty, repeat_last_n: 64, seed: args.seed },
            telemetry: args.telemetry,
            passes: 0,
            answers: 0,
            conversation,
            turn: 0,
            dropped_turns: 0,
            last: None,
            evaluated_tokens: 0,
            reused_tokens: 0,
            generated_tokens: 0,
        })
    }

    /// One line of interactive input (whichever source typed it): `/quit`,
    /// `/reset`, `/stats`, or the next turn. A line that cannot be answered
    /// (too long for the context) gets a `@warning`; an error ends the run.
    pub fn line(&mut self, team: &'static Team, line: &str) -> Result<Flow, String> {
        match line.trim() {
            "" => return Ok(Flow::Idle),
            "/quit" => return Ok(Flow::Quit),
            "/reset" => self.reset(),
            "/stats" => self.stats(),
            text => match self.answer(team, text) {
                Ok(()) => {}
                Err(AnswerError::Input(msg)) => telemetry::warning(format_args!("{msg}: line ignored")),
                Err(AnswerError::Fatal(msg)) => return Err(msg),
            },
        }
        Ok(Flow::Done)
    }

    /// `/reset`: a new conversation (the system prompt's cache is kept).
    pub fn reset(&mut self) {
        self.conversation.reset();
        self.turn = 0;
        println!("conversation reset");
    }

    /// `/stats`: `@chat_stats` and a line for people.
    pub fn stats(&self) {
        let last = self.last.unwrap_or_default();
        let c = &self.conversation;
        telemetry::emit(&ChatStats {
            answers: self.answers as u64,
            turn: self.turn,
            turns_kept: c.turns().len() as u64,
            dropped_turns: self.dropped_turns,
            cached_tokens: c.cached_tokens() as u64,
            n_ctx: c.n_ctx() as u64,
            evaluated_tokens: self.evaluated_tokens,
            reused_tokens: self.reused_tokens,
            generated_tokens: self.generated_tokens,
            prefill_tok_s: last.prefill_tok_s,
            decode_tok_s: last.decode_tok_s,
        });
        println!(
            "stats: {} answers, {} turns in the context ({} dropped), {}/{} context tokens cached; last answer: prefill {:.2} tokens/s, decode {:.2} tokens/s; \
             {} tokens evaluated, {} reused, {} generated",
            self.answers,
            c.turns().len(),
            self.dropped_turns,
            c.cached_tokens(),
            c.n_ctx(),
            last.prefill_tok_s,
            last.decode_tok_s,
            self.evaluated_tokens,
            self.reused_tokens,
            self.generated_tokens
        );
    }

    /// The next turn's context, with a `@warning` when old turns had to go.
    fn plan(&mut self, team: &Team, line: &str) -> Result<TurnPlan, AnswerError> {
        let plan = self.conversation.plan(team.tokenizer, line, self.tokens).map_err(|e| match e {
            ConversationError::TooLong { .. } | ConversationError::Empty => AnswerError::Input(alloc::format!("{e}")),
            _ => AnswerError::Fatal(alloc::format!("{e}")),
        })?;
        if plan.dropped_turns > 0 {
            self.dropped_turns += plan.dropped_turns as u64;
            telemetry::warning(format_args!(
                "the context ({} tokens) is full: dropped the oldest {} turn(s), kept the system prompt; evaluating the {} tokens after it again",
                team.state_cfg.n_ctx,
                plan.dropped_turns,
                plan.new_tokens().len()
            ));
        }
        Ok(plan)
    }

    /// Answers `line`, the next turn of the conversation, on the team;
    /// reports tokens, timings and a summary.
    pub fn answer(&mut self, team: &'static Team, line: &str) -> Result<(), AnswerError> {
        let plan = self.plan(team, line)?;
        let ids = plan.new_tokens().to_vec();
        let tokens = plan.max_new;
        telemetry::emit(&Prompt {
            answer: self.answers as u64,
            turn: self.turn,
            tokens: plan.tokens.len() as u64,
            new_tokens: ids.len() as u64,
            reused_tokens: plan.reused as u64,
            max_new: tokens as u64,
            chat: self.chat,
            text: line.into(),
            ids: (ids.len() <= 256).then(|| ids.as_slice().into()),
        });
        let batch = team.state_cfg.max_batch.min(ids.len());
        let start_ns = tsc::now_ns();
        let sink = SerialSink {
            tokenizer: team.tokenizer,
            utf8: Utf8Stream::new(),
            piece: String::with_capacity(256),
            telemetry: self.telemetry,
            start_ns,
            prefill_ns: None,
            token_ns: Vec::with_capacity(tokens),
            ids: Vec::with_capacity(tokens),
            text: String::with_capacity(tokens * 16),
            screen: ScreenView::begin(team.compute.len(), ids.len(), self.telemetry != Telemetry::Off),
        };
        let n = team.compute.len();
        let engine = EngineTeam::new(team.model, team.state, n).map_err(|e| alloc::format!("compute team: {e}"))?;
        let answer = Arc::new(Answer {
            max_passes: ids.len().div_ceil(batch) + tokens,
            prompt: ids,
            start_pos: plan.start_pos(),
            max_new_tokens: tokens,
            prefill_batch: batch,
            first_pass: self.passes,
            stop: AtomicBool::new(false),
            leader: spin::Mutex::new(Some((Sampler::new(self.sampler, team.model.config.n_vocab), sink))),
            result: spin::Mutex::new(LaunchResult { outcome: None, cores: (0..n).map(|_| None).collect(), passes: 0 }),
            engine,
        });
        let io = launch(team, &answer);
        screen_view::answer_done();
        if self.telemetry == Telemetry::Off {
            crate::println!();
        }
        let result = core::mem::replace(&mut *answer.result.lock(), LaunchResult { outcome: None, cores: Vec::new(), passes: 0 });
        self.passes += result.passes as u64;
        self.answers += 1;
        let Some(outcome) = result.outcome else {
            return Err("the compute team ended without an outcome".into());
        };
        let stop = match outcome.stop {
            StopReason::StopToken => "eos",
            StopReason::Limit => "limit",
            StopReason::Sink => "sink",
            StopReason::ContextFull => "context",
        };
        let cores: Vec<CoreReport> = result.cores.into_iter().flatten().collect();
        report::per_core(self.telemetry, &cores, team.model.config.n_layers);
        let elapsed_ns = tsc::now_ns() - start_ns;
        if let Some(io) = &io {
            report::io(io, elapsed_ns);
        }
        let leader = answer.leader.lock();
        let (_, sink) = leader.as_ref().ok_or("the leader's sink was not handed back")?;
        let timing = report::Timing {
            start_ns,
            prefill_ns: sink.prefill_ns,
            token_ns: &sink.token_ns,
            prompt_tokens: answer.prompt.len(),
            passes: result.passes,
            io: io.map(|s| (s, elapsed_ns)),
        };
        self.last = Some(report::summary(team, &timing, &cores, outcome.generated, stop, &sink.text));
        self.evaluated_tokens += answer.prompt.len() as u64;
        self.reused_tokens += plan.reused as u64;
        self.generated_tokens += outcome.generated as u64;
        self.conversation.finish(team.tokenizer, plan, line, &sink.ids, outcome.end_pos);
        self.turn += 1;
        Ok(())
    }
}

/// Runs `answer` on the compute team, with the I/O core streaming beside it
/// when there is one; returns what the I/O core did.
fn launch(team: &'static Team, answer: &Arc<Answer>) -> Option<IoStats> {
    let helpers: Vec<usize> = team.io_cpu.into_iter().collect();
    let io_before = team.streamer.lock().stats;
    let answer = answer.clone();
    smp::run_with_helpers(&team.compute, &helpers, move |cpu| {
        if cpu.is_helper() {
            if let Err(msg) = team.streamer.lock().run_until(&answer.stop, team.io_wake) {
                stop_with_error(&msg);
            }
            return;
        }
        compute(team, &answer, cpu);
    });
    (!team.resident()).then(|| team.streamer.lock().stats.since(&io_before))
}

/// One compute core's part of an answer.
fn compute(team: &Team, answer: &Answer, cpu: &mut smp::LaunchedCpu) {
    let cpu_index = cpu.cpu();
    // Per-core buffers, allocated before the first token.
    let mut scratch = Scratch::new(&team.model.config, &team.state_cfg);
    let worker = KernelWorker::new(cpu, &team.shared, answer.first_pass, answer.max_passes);
    let index = worker.index();
    let mut seat = match answer.engine.seat(index, &worker) {
        Ok(s) => s,
        Err(e) => stop_with_error(&alloc::format!("compute core {index}: {e}")),
    };
    let params = GenerateParams {
        prompt: &answer.prompt,
        start_pos: answer.start_pos,
        max_new_tokens: answer.max_new_tokens,
        stop_tokens: team.tokenizer.eog_ids(),
        prefill_batch: answer.prefill_batch,
    };
    let mut leading = if index == 0 { answer.leader.lock().take() } else { None };
    let lead = leading.as_mut().map(|(sampler, sink)| Leader { sampler, sink });
    let outcome = match generate(&mut seat, &mut scratch, &params, lead) {
        Ok(o) => o,
        Err(e) => stop_with_error(&alloc::format!("{e}")),
    };
    if index == 0 {
        *answer.leader.lock() = leading;
        answer.stop.store(true, Ordering::SeqCst);
        team.io_wake.notify();
    }
    let passes = worker.passes_run();
    let core = CoreReport { cpu: cpu_index, layers: worker.layers.take(), passes: worker.passes_out.take() };
    let mut r = answer.result.lock();
    r.cores[index] = Some(core);
    if index == 0 {
        r.outcome = Some(outcome);
        r.passes = passes;
    }
}
