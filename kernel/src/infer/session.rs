//! One answer: tokenize the prompt, launch the compute team (and the I/O
//! core beside it when streaming) on the engine's `generate`, stream the
//! tokens to serial as they come, then report the timings.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use axiom_engine::forward::{generate, GenerateOutcome, GenerateParams, Leader, StopReason, TokenSink};
use axiom_engine::model::Model;
use axiom_engine::sampler::{Sampler, SamplerConfig};
use axiom_engine::state::{Scratch, SharedState, StateConfig};
use axiom_engine::tokenizer::{ChatMessage, Tokenizer, Utf8Stream};
use axiom_kernel::slot_ring::SlotRing;
use axiom_kernel::tensor_plan::Mode;
use crossbeam_utils::CachePadded;

use super::args::{InferArgs, Telemetry};
use super::io::{IoWake, Streamer};
use super::pool::{PackedLayer, SlotMem};
use super::report::{self, CoreReport};
use super::stop_with_error;
use super::team::{KernelWorker, TeamShared};
use crate::{print, smp, telemetry, tsc};

/// Everything the answers share, set up once at boot.
pub struct Team<'a> {
    pub compute: &'a [usize],
    /// The I/O core, when it streams.
    pub io_cpu: Option<usize>,
    /// An I/O core exists but has nothing to do (resident mode).
    pub io_core_idle: bool,
    pub model: &'a Model<'a>,
    pub state: &'a SharedState<'a>,
    pub state_cfg: StateConfig,
    pub tokenizer: &'a Tokenizer,
    pub ring: &'a SlotRing<'a>,
    pub slots: &'a [SlotMem],
    pub extent_bytes: &'a [usize],
    /// Repacked copies of the resident layers.
    pub packed_layers: Option<&'a [PackedLayer]>,
    pub streamer: &'a spin::Mutex<Streamer<'a>>,
    pub io_wake: &'a IoWake,
    pub mode: Mode,
}

impl Team<'_> {
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
struct SerialSink<'a> {
    tokenizer: &'a Tokenizer,
    utf8: Utf8Stream,
    piece: String,
    telemetry: Telemetry,
    start_ns: u64,
    prefill_ns: Option<u64>,
    token_ns: Vec<u64>,
    text: String,
}

impl TokenSink for SerialSink<'_> {
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
            _ => telemetry::emit("token", |o| {
                o.u64("i", i as u64).u64("id", id as u64).str("text", &self.piece).u64("us", (now - since) / 1000);
            }),
        }
        true
    }
}

/// What the compute cores hand back after a launch.
struct LaunchResult {
    outcome: Option<GenerateOutcome>,
    cores: Vec<Option<CoreReport>>,
    io: Option<super::io::IoStats>,
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

    /// Answers `prompt` on the team; reports tokens, timings and a summary.
    pub fn answer(&mut self, team: &Team, prompt: &str) -> Result<(), String> {
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
        let tokens = self.tokens.min(n_ctx - ids.len());
        telemetry::emit("prompt", |o| {
            o.u64("answer", self.answers as u64).u64("tokens", ids.len() as u64).u64("max_new", tokens as u64).bool("chat", self.chat);
            o.str("text", prompt);
            if ids.len() <= 256 {
                o.array("ids", |a| {
                    for &id in &ids {
                        a.u64(id as u64);
                    }
                });
            }
        });
        let batch = team.state_cfg.max_batch.min(ids.len());
        let params = GenerateParams { prompt: &ids, start_pos: 0, max_new_tokens: tokens, stop_tokens: tok.eog_ids(), prefill_batch: batch };
        let max_passes = ids.len().div_ceil(batch) + tokens;

        let mut sampler = Sampler::new(self.sampler, team.model.config.n_vocab);
        let start_ns = tsc::now_ns();
        let mut sink = SerialSink {
            tokenizer: tok,
            utf8: Utf8Stream::new(),
            piece: String::with_capacity(256),
            telemetry: self.telemetry,
            start_ns,
            prefill_ns: None,
            token_ns: Vec::with_capacity(tokens),
            text: String::with_capacity(tokens * 16),
        };
        let result = self.launch(team, &params, max_passes, Leader { sampler: &mut sampler, sink: &mut sink });
        if self.telemetry == Telemetry::Off {
            crate::println!();
        }
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
        if let Some(io) = &result.io {
            report::io(io, tsc::now_ns() - start_ns);
        }
        let timing = report::Timing { start_ns, prefill_ns: sink.prefill_ns, token_ns: &sink.token_ns, prompt_tokens: ids.len() };
        report::summary(team, &timing, &cores, outcome.generated, stop, &sink.text);
        Ok(())
    }

    fn launch(&self, team: &Team, params: &GenerateParams, max_passes: usize, leader: Leader) -> LaunchResult {
        let n = team.compute.len();
        let shared = TeamShared {
            ring: team.ring,
            slots: team.slots,
            layouts: &team.model.layout.layers,
            extent_bytes: team.extent_bytes,
            resident: team.resident(),
            packed: team.packed_layers,
            releases: (0..team.slots.len()).map(|_| CachePadded::new(Default::default())).collect(),
            sync_loader: if team.resident() || team.io_cpu.is_some() { None } else { Some(team.streamer) },
            io_wake: team.io_cpu.map(|_| team.io_wake),
            team: n,
        };
        let stop = AtomicBool::new(false);
        let leader = spin::Mutex::new(Some(leader));
        let result = spin::Mutex::new(LaunchResult { outcome: None, cores: (0..n).map(|_| None).collect(), io: None, passes: 0 });
        let helpers: Vec<usize> = team.io_cpu.into_iter().collect();
        let first_pass = self.passes;
        let io_before = team.streamer.lock().stats;
        let engine_team = match axiom_engine::team::Team::new(team.model, team.state, n) {
            Ok(t) => t,
            Err(e) => stop_with_error(&alloc::format!("compute team: {e}")),
        };
        smp::launch::run_with_helpers(team.compute, &helpers, |w| {
            if w.is_helper() {
                let mut streamer = team.streamer.lock();
                if let Err(msg) = streamer.run_until(&stop, team.io_wake) {
                    stop_with_error(&msg);
                }
                return;
            }
            let cpu = w.cpu();
            // Per-core buffers, allocated before the first token.
            let mut scratch = Scratch::new(&team.model.config, &team.state_cfg);
            let kw = KernelWorker::new(w, &shared, first_pass, max_passes);
            let index = kw.index();
            let mut seat = match engine_team.seat(index, &kw) {
                Ok(s) => s,
                Err(e) => stop_with_error(&alloc::format!("compute core {index}: {e}")),
            };
            let lead = if index == 0 { leader.lock().take() } else { None };
            let outcome = generate(&mut seat, &mut scratch, params, lead);
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) => stop_with_error(&alloc::format!("{e}")),
            };
            if index == 0 {
                stop.store(true, Ordering::SeqCst);
                team.io_wake.notify();
            }
            let passes = kw.passes_run();
            let core = CoreReport { cpu, layers: kw.layers.take(), passes: kw.passes_out.take() };
            let mut r = result.lock();
            r.cores[index] = Some(core);
            if index == 0 {
                r.outcome = Some(outcome);
                r.passes = passes;
            }
        });
        let mut r = result.into_inner();
        if !team.resident() {
            r.io = Some(team.streamer.lock().stats.since(&io_before));
        }
        r
    }
}
