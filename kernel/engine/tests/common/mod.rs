//! Shared helpers of the engine's integration tests (test data and models:
//! `axiom_testkit`).
#![allow(dead_code)]

pub mod goldens;

/// A small deterministic PRNG for randomized tests (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

use axiom_engine::forward::{forward, generate, Batch, GenerateParams, Leader, Logits, StopReason, TokenSink};
use axiom_engine::model::{LayerSource, Model};
use axiom_engine::sampler::{Sampler, SamplerConfig};
use axiom_engine::state::{KvType, Scratch, SharedState, StateConfig};
use axiom_engine::team::{ResidentWorker, Seat, Team};

/// Runs `f` from every seat of a team of `count` std threads (seat 0 on the
/// calling thread) running `model` on `state`, and returns seat 0's result. A
/// panicking member poisons the team so the others stop too instead of
/// waiting forever.
pub fn run_team<R, S: Send>(model: &Model<'_>, state: &SharedState<'_>, count: usize, layers: &dyn LayerSource, scratches: &mut [S], f: impl Fn(&mut Seat<'_, ResidentWorker<'_>>, &mut S) -> R + Sync) -> R {
    assert!(scratches.len() >= count);
    let team = Team::new(model, state, count).unwrap();
    struct PoisonOnPanic<'b, 'a>(&'b Team<'a>);
    impl Drop for PoisonOnPanic<'_, '_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.poison();
            }
        }
    }
    let worker = ResidentWorker::yielding(layers, std::thread::yield_now);
    let mut seats = team.seats(&worker).unwrap().into_iter();
    let mut lead = seats.next().unwrap();
    let (first, rest) = scratches.split_at_mut(1);
    std::thread::scope(|s| {
        for (mut seat, scratch) in seats.zip(rest.iter_mut()) {
            let (team, f) = (&team, &f);
            s.spawn(move || {
                let _guard = PoisonOnPanic(team);
                f(&mut seat, scratch);
            });
        }
        let _guard = PoisonOnPanic(&team);
        f(&mut lead, &mut first[0])
    })
}

/// Logits of every position of `tokens` (teacher-forced, a fresh context),
/// prefilled in batches of `batch` by `workers` threads, with a `kv_type`
/// cache.
pub fn all_logits(model: &Model<'_>, layers: &dyn LayerSource, tokens: &[u32], workers: usize, batch: usize, kv_type: KvType) -> Vec<Vec<f32>> {
    let sc = StateConfig { n_ctx: tokens.len(), max_batch: batch, logit_rows: batch, kv_type };
    let mut mem = vec![0.0f32; SharedState::floats_needed(&model.config, &sc).unwrap()];
    let mut state = SharedState::new(model, sc, &mut mem).unwrap();
    let mut scratches: Vec<Scratch> = (0..workers).map(|_| Scratch::new(&model.config, &sc)).collect();
    let (mut out, vocab) = (Vec::new(), model.config.n_vocab);
    for (i, chunk) in tokens.chunks(batch).enumerate() {
        run_team(model, &state, workers, layers, &mut scratches, |seat, scratch| {
            forward(seat, scratch, &Batch { tokens: chunk, pos: i * batch, logits: Logits::All });
        });
        out.extend(state.logits().chunks(vocab).take(chunk.len()).map(|r| r.to_vec()));
    }
    out
}

struct Collect(Vec<u32>);

impl TokenSink for Collect {
    fn token(&mut self, id: u32) -> bool {
        self.0.push(id);
        true
    }
}

/// Greedy generation of up to `n` tokens after `prompt` (a fresh context,
/// default KV type), stopping at any of `stop`, by `workers` threads
/// prefilling in batches of `prefill_batch`.
pub fn greedy(model: &Model<'_>, layers: &dyn LayerSource, prompt: &[u32], n: usize, stop: &[u32], workers: usize, prefill_batch: usize) -> (Vec<u32>, StopReason) {
    let sc = StateConfig { n_ctx: prompt.len() + n, max_batch: prefill_batch, logit_rows: 1, kv_type: KvType::default() };
    let mut mem = vec![0.0f32; SharedState::floats_needed(&model.config, &sc).unwrap()];
    let state = SharedState::new(model, sc, &mut mem).unwrap();
    let mut scratches: Vec<Scratch> = (0..workers).map(|_| Scratch::new(&model.config, &sc)).collect();
    let mut sampler = Sampler::new(SamplerConfig::greedy(), model.config.n_vocab);
    let mut sink = Collect(Vec::new());
    let leader = std::sync::Mutex::new(Some(Leader { sampler: &mut sampler, sink: &mut sink }));
    let params = GenerateParams { prompt, start_pos: 0, max_new_tokens: n, stop_tokens: stop, prefill_batch };
    let outcome = run_team(model, &state, workers, layers, &mut scratches, |seat, scratch| {
        let lead = if seat.index() == 0 { leader.lock().unwrap().take() } else { None };
        generate(seat, scratch, &params, lead).unwrap()
    });
    (sink.0, outcome.stop)
}
