//! One answer: tokenize the prompt, launch the compute team (and the I/O
//! core beside it when streaming) on the engine's `generate`, stream the
//! tokens to serial as they come, then report the timings.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use axiom_engine::forward::{generate, GenerateOutcome, GenerateParams, Leader, StopReason, TokenSink};
use axiom_engine::model::Model;
use axiom_engine::sampler::{Sampler, SamplerConfig};
use axiom_engine::state::{Scratch, SharedState, StateConfig};
use axiom_engine::team::Team as EngineTeam;
use axiom_engine::tokenizer::{ChatMessage, Tokenizer, Utf8Stream};
use axiom_hw::time as tsc;

use super::args::{InferArgs, Telemetry};
use super::io::{IoStats, IoWake, Streamer};
use super::report::{self, CoreReport};
use super::screen_view::{self, ScreenView};
use super::stop_with_error;
use super::team::{KernelWorker, TeamShared};
use crate::tensor_plan::Mode;
use crate::telemetry::events::{Prompt, Token};
use crate::{print, smp, telemetry};

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
    prompt: Vec<u32>,
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
    pub fn new(args: &InferArgs) -> Session {
        Session {
            chat: args.chat,
            tokens: args.tokens,
            sampler: SamplerConfig { temperature: args.temp, top_k: args.top_k, top_p: args.top_p, repetition_penalty: 1.0, repeat_last_n: 64, seed: args.seed },
            telemetry: args.telemetry,
            passes: 0,
            answers: 0,
        }
    }

    /// The prompt's token ids, checked against the context.
    fn encode(&self, team: &Team, prompt: &str) -> Result<Vec<u32>, String> {
        let tok = team.tokenizer;
        let ids = if self.chat {
            tok.encode_chat(&[ChatMessage { role: "user", content: prompt }], true).map_err(|e| alloc::format!("chat template: {e}"))?
        } else {
            tok.encode(prompt, true, true)
        };
        let n_ctx = team.state_cfg.n_ctx;
        if ids.is_empty() {
            return Err(String::from("the prompt encodes to no tokens"));
        }
        if ids.len() >= n_ctx {
            return Err(alloc::format!("the prompt has {} tokens; the context holds {n_ctx} (raise ctx=)", ids.len()));
        }
        Ok(ids)
    }

    /// Answers `prompt` on the team; reports tokens, timings and a summary.
    pub fn answer(&mut self, team: &'static Team, prompt: &str) -> Result<(), String> {
        let ids = self.encode(team, prompt)?;
        let tokens = self.tokens.min(team.state_cfg.n_ctx - ids.len());
        telemetry::emit(&Prompt {
            answer: self.answers as u64,
            tokens: ids.len() as u64,
            max_new: tokens as u64,
            chat: self.chat,
            text: prompt.into(),
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
            text: String::with_capacity(tokens * 16),
            screen: ScreenView::begin(team.compute.len(), ids.len(), self.telemetry != Telemetry::Off),
        };
        let n = team.compute.len();
        let engine = EngineTeam::new(team.model, team.state, n).map_err(|e| alloc::format!("compute team: {e}"))?;
        let answer = Arc::new(Answer {
            max_passes: ids.len().div_ceil(batch) + tokens,
            prompt: ids,
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
            return Err(String::from("the compute team ended without an outcome"));
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
        report::summary(team, &timing, &cores, outcome.generated, stop, &sink.text);
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
        start_pos: 0,
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
