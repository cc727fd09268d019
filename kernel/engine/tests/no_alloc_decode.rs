//! A decode step allocates nothing: forward passes of batch 1, sampling
//! included, run under a counting global allocator.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use axiom_engine::forward::{forward, Batch, Logits};
use axiom_engine::gguf::Gguf;
use axiom_engine::matmul::Kernels;
use axiom_engine::model::{Model, ResidentLayers};
use axiom_engine::team::{ResidentWorker, Team};
use axiom_engine::sampler::{Sampler, SamplerConfig};
use axiom_engine::state::{KvType, Scratch, SharedState, StateConfig};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decode_steps_do_not_allocate() {
    let bytes = axiom_testkit::default_model_bytes();
    let g = Gguf::parse(&bytes).unwrap();
    let model = Model::from_gguf(&g, Kernels::detect()).unwrap();
    let resident = ResidentLayers::new(&bytes, &model.layout).unwrap();
    let worker = ResidentWorker::new(&resident);
    let sc = StateConfig { n_ctx: 32, max_batch: 8, logit_rows: 1, kv_type: KvType::default() };
    let mut mem = vec![0f32; SharedState::floats_needed(&model.config, &sc).unwrap()];
    let state = SharedState::new(&model, sc, &mut mem).unwrap();
    let team = Team::new(&model, &state, 1).unwrap();
    let mut seat = team.seat(0, &worker).unwrap();
    let mut scratch = Scratch::new(&model.config, &sc);
    let cfg = SamplerConfig { temperature: 0.8, top_k: 40, top_p: 0.9, repetition_penalty: 1.1, seed: 1, ..Default::default() };
    let mut sampler = Sampler::new(cfg, model.config.n_vocab);

    let prompt = [504u32, 3575, 282, 4649, 314];
    forward(&seat, &mut scratch, &Batch { tokens: &prompt, pos: 0, logits: Logits::Last });
    let mut token = sampler.sample(&mut seat.leader_logits().unwrap()[..model.config.n_vocab]);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for pos in prompt.len()..prompt.len() + 8 {
        sampler.accept(token);
        forward(&seat, &mut scratch, &Batch { tokens: &[token], pos, logits: Logits::Last });
        token = sampler.sample(&mut seat.leader_logits().unwrap()[..model.config.n_vocab]);
    }
    let during = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(during, 0, "{during} allocations in 8 decode steps");
}
