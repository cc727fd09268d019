//! The forward pass on small synthetic models against the f64 specification
//! ([`crate::reference`]): every architecture option (adjacent and NeoX
//! RoPE, partial rotary dims, linear RoPE scaling, grouped K/V heads, Q/K/V
//! biases, tied and untied output head), with F32 weights so no activation
//! quantization blurs the comparison; plus bit-identical results for 1..4
//! threads and any prefill batch, and Q8_0/Q4_1 weights running end to end.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use std::sync::Mutex;

use super::*;
use crate::ggml_type::GgmlType;
use crate::gguf::builder::GgufBuilder;
use crate::gguf::Gguf;
use crate::matmul::tests::isa_kernels;
use crate::matmul::{Isa, Kernels};
use crate::model::packed::{aligned_part, PackedPlan, PACK_ALIGN};
use crate::model::{LayerSource, LayerWeights, Model, PackedLayers, ResidentLayers};
use crate::team::{ResidentWorker, Seat, Team, TeamError};
use crate::sampler::{Sampler, SamplerConfig};
use crate::state::{KvType, Scratch, SharedState, StateConfig};

#[derive(Clone, Copy)]
struct Spec {
    arch: &'static str,
    layers: usize,
    embd: usize,
    ff: usize,
    heads: usize,
    kv_heads: usize,
    vocab: usize,
    n_rot: usize,
    scale: f32,
    tied: bool,
    biases: bool,
    /// Llama 3 per-dimension RoPE frequency factors (`rope_freqs.weight`).
    freqs: bool,
    ty: GgmlType,
    /// `attention.key_length` (0: n_embd / n_heads, no key written).
    head_dim: usize,
    /// `rope.freq_base`.
    base: f32,
    /// `attention.sliding_window` (0: none written).
    window: usize,
    /// An architecture tensor left out (`blk.L.NAME.weight` of the last layer), for error tests.
    omit: &'static str,
}

const BASE: Spec = Spec {
    arch: "llama",
    layers: 2,
    embd: 64,
    ff: 96,
    heads: 4,
    kv_heads: 2,
    vocab: 40,
    n_rot: 16,
    scale: 1.0,
    tied: true,
    biases: false,
    freqs: false,
    ty: GgmlType::F32,
    head_dim: 0,
    base: 10000.0,
    window: 0,
    omit: "",
};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize, amp: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * amp).collect()
    }
}

/// `v` encoded as `ty` where the engine has a quantizer for it; otherwise
/// random blocks of `ty` with small scales (the matmul tests' generator).
fn encode_or_random(ty: GgmlType, v: &[f32], cols: usize, rng: &mut crate::quant::tests::Rng) -> Vec<u8> {
    match ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 => encode(ty, v, cols),
        _ => crate::matmul::tests::random_matrix(rng, ty, v.len() / cols, cols),
    }
}

fn encode(ty: GgmlType, v: &[f32], cols: usize) -> Vec<u8> {
    let row = ty.row_bytes(cols as u64).unwrap() as usize;
    let mut out = vec![0u8; v.len() / cols * row];
    for (src, dst) in v.chunks(cols).zip(out.chunks_mut(row)) {
        crate::quant::quantize_row(ty, src, dst).unwrap();
    }
    out
}

fn build(spec: &Spec, seed: u64) -> Vec<u8> {
    let mut rng = Lcg(seed);
    let hd = if spec.head_dim == 0 { spec.embd / spec.heads } else { spec.head_dim };
    let arch = crate::model::Arch::from_name(spec.arch).unwrap();
    let (q, kv) = (spec.heads * hd, spec.kv_heads * hd);
    let a = spec.arch;
    let mut b = GgufBuilder::new(3);
    b.kv_str("general.architecture", a);
    b.kv_u32(&format!("{a}.block_count"), spec.layers as u32);
    b.kv_u32(&format!("{a}.context_length"), 64);
    b.kv_u32(&format!("{a}.embedding_length"), spec.embd as u32);
    b.kv_u32(&format!("{a}.feed_forward_length"), spec.ff as u32);
    b.kv_u32(&format!("{a}.attention.head_count"), spec.heads as u32);
    b.kv_u32(&format!("{a}.attention.head_count_kv"), spec.kv_heads as u32);
    b.kv_f32(&format!("{a}.attention.layer_norm_rms_epsilon"), 1e-5);
    b.kv_f32(&format!("{a}.rope.freq_base"), spec.base);
    if spec.head_dim != 0 {
        b.kv_u32(&format!("{a}.attention.key_length"), hd as u32);
        b.kv_u32(&format!("{a}.attention.value_length"), hd as u32);
    }
    if spec.window != 0 {
        b.kv_u32(&format!("{a}.attention.sliding_window"), spec.window as u32);
    }
    b.kv_u32(&format!("{a}.rope.dimension_count"), spec.n_rot as u32);
    if spec.scale != 1.0 {
        b.kv_str(&format!("{a}.rope.scaling.type"), "linear");
        b.kv_f32(&format!("{a}.rope.scaling.factor"), spec.scale);
    }
    let mut blocks = crate::quant::tests::Rng::new(seed);
    let mut matrix = |b: &mut GgufBuilder, name: &str, cols: usize, rows: usize, amp: f32| {
        let v = rng.vec(cols * rows, amp);
        b.tensor_raw(name, &[cols as u64, rows as u64], spec.ty, &encode_or_random(spec.ty, &v, cols, &mut blocks));
    };
    let emb_ty = spec.ty;
    let mut r2 = Lcg(seed ^ 0x55);
    let emb = r2.vec(spec.embd * spec.vocab, 1.0);
    b.tensor_raw("token_embd.weight", &[spec.embd as u64, spec.vocab as u64], emb_ty, &encode_or_random(emb_ty, &emb, spec.embd, &mut crate::quant::tests::Rng::new(seed ^ 0x55)));
    for l in 0..spec.layers {
        let norm: Vec<f32> = r2.vec(spec.embd, 0.3).iter().map(|x| 1.0 + x).collect();
        b.tensor_f32(&format!("blk.{l}.attn_norm.weight"), &[spec.embd as u64], &norm);
        matrix(&mut b, &format!("blk.{l}.attn_q.weight"), spec.embd, q, 0.3);
        matrix(&mut b, &format!("blk.{l}.attn_k.weight"), spec.embd, kv, 0.3);
        matrix(&mut b, &format!("blk.{l}.attn_v.weight"), spec.embd, kv, 0.3);
        matrix(&mut b, &format!("blk.{l}.attn_output.weight"), q, spec.embd, 0.2);
        if spec.biases {
            b.tensor_f32(&format!("blk.{l}.attn_q.bias"), &[q as u64], &r2.vec(q, 0.5));
            b.tensor_f32(&format!("blk.{l}.attn_k.bias"), &[kv as u64], &r2.vec(kv, 0.5));
            b.tensor_f32(&format!("blk.{l}.attn_v.bias"), &[kv as u64], &r2.vec(kv, 0.5));
        }
        if arch.has_qk_norm() {
            for name in ["attn_q_norm", "attn_k_norm"].into_iter().filter(|n| !(*n == spec.omit && l + 1 == spec.layers)) {
                let norm: Vec<f32> = r2.vec(hd, 0.35).iter().map(|x| 1.0 + x).collect();
                b.tensor_f32(&format!("blk.{l}.{name}.weight"), &[hd as u64], &norm);
            }
        }
        if arch.has_post_norms() {
            for name in ["post_attention_norm", "post_ffw_norm"].into_iter().filter(|n| !(*n == spec.omit && l + 1 == spec.layers)) {
                let norm: Vec<f32> = r2.vec(spec.embd, 0.3).iter().map(|x| 1.0 + x).collect();
                b.tensor_f32(&format!("blk.{l}.{name}.weight"), &[spec.embd as u64], &norm);
            }
        }
        let norm: Vec<f32> = r2.vec(spec.embd, 0.3).iter().map(|x| 1.0 + x).collect();
        b.tensor_f32(&format!("blk.{l}.ffn_norm.weight"), &[spec.embd as u64], &norm);
        matrix(&mut b, &format!("blk.{l}.ffn_gate.weight"), spec.embd, spec.ff, 0.3);
        matrix(&mut b, &format!("blk.{l}.ffn_up.weight"), spec.embd, spec.ff, 0.3);
        matrix(&mut b, &format!("blk.{l}.ffn_down.weight"), spec.ff, spec.embd, 0.2);
    }
    b.tensor_f32("output_norm.weight", &[spec.embd as u64], &r2.vec(spec.embd, 0.2).iter().map(|x| 1.0 + x).collect::<Vec<_>>());
    if !spec.tied {
        matrix(&mut b, "output.weight", spec.embd, spec.vocab, 0.3);
    }
    if spec.freqs {
        let factors: Vec<f32> = (0..spec.n_rot / 2).map(|i| 1.0 + i as f32 * 0.75).collect();
        b.tensor_f32("rope_freqs.weight", &[(spec.n_rot / 2) as u64], &factors);
    }
    b.finish()
}

/// The model's logits for every position, from the f64 specification.
fn reference(bytes: &[u8], tokens: &[u32]) -> Vec<Vec<f64>> {
    let g = Gguf::parse(bytes).unwrap();
    let model = Model::from_gguf(&g, Kernels::for_isa(Isa::Scalar).unwrap()).unwrap();
    let layers = ResidentLayers::new(bytes, &model.layout).unwrap();
    crate::reference::logits(&model, &layers, tokens)
}

/// Runs `f` from every seat of a team of `count` std threads (seat 0 on
/// this thread) running `model` on `state`.
fn team<R: Send>(model: &Model<'_>, state: &SharedState<'_>, count: usize, layers: &dyn LayerSource, scratches: &mut [Scratch], f: impl Fn(&mut Seat<'_, ResidentWorker<'_>>, &mut Scratch) -> R + Sync) -> R {
    let team = Team::new(model, state, count).unwrap();
    let worker = ResidentWorker::yielding(layers, std::thread::yield_now);
    let mut seats = team.seats(&worker).unwrap().into_iter();
    let mut lead = seats.next().unwrap();
    std::thread::scope(|s| {
        let (first, rest) = scratches.split_at_mut(1);
        for (mut seat, scratch) in seats.zip(rest.iter_mut()) {
            let f = &f;
            s.spawn(move || f(&mut seat, scratch));
        }
        f(&mut lead, &mut first[0])
    })
}

fn run(bytes: &[u8], tokens: &[u32], workers: usize, batch: usize, isa: Isa) -> Vec<Vec<f32>> {
    run_with(bytes, tokens, workers, batch, isa, false)
}

fn run_with(bytes: &[u8], tokens: &[u32], workers: usize, batch: usize, isa: Isa, packed: bool) -> Vec<Vec<f32>> {
    run_kv(bytes, tokens, workers, batch, isa, packed, KvType::F32)
}

fn run_kv(bytes: &[u8], tokens: &[u32], workers: usize, batch: usize, isa: Isa, packed: bool, kv_type: KvType) -> Vec<Vec<f32>> {
    let g = Gguf::parse(bytes).unwrap();
    let mut model = Model::from_gguf(&g, Kernels::for_isa(isa).unwrap()).unwrap();
    let resident = ResidentLayers::new(bytes, &model.layout).unwrap();
    let plan = PackedPlan::new(&model.layout);
    let mut storage = vec![0u8; plan.bytes() + PACK_ALIGN];
    let packed_layers;
    let layers: &dyn LayerSource = if packed {
        let globals = crate::model::extent_bytes(bytes, &model.layout.globals.extent).unwrap();
        let buf = aligned_part(&mut storage, PACK_ALIGN, plan.bytes()).unwrap();
        packed_layers = PackedLayers::pack(resident.clone(), &model.layout, globals, plan, buf).unwrap();
        if let Some(o) = packed_layers.output() {
            model.globals.output = o;
        }
        &packed_layers
    } else {
        &resident
    };
    let sc = StateConfig { n_ctx: tokens.len(), max_batch: batch, logit_rows: batch, kv_type };
    let mut mem = vec![0f32; SharedState::floats_needed(&model.config, &sc).unwrap()];
    let mut state = SharedState::new(&model, sc, &mut mem).unwrap();
    let mut scratches: Vec<Scratch> = (0..workers).map(|_| Scratch::new(&model.config, &sc)).collect();
    let mut out = vec![];
    for (i, chunk) in tokens.chunks(batch).enumerate() {
        team(&model, &state, workers, layers, &mut scratches, |seat, s| forward(seat, s, &Batch { tokens: chunk, pos: i * batch, logits: Logits::All }));
        let v = model.config.n_vocab;
        out.extend(state.logits().chunks(v).take(chunk.len()).map(|r| r.to_vec()));
    }
    out
}

const TOKENS: [u32; 11] = [3, 17, 5, 39, 0, 22, 22, 8, 31, 12, 1];

fn check_against_reference(spec: Spec) {
    let bytes = build(&spec, 42);
    let want = reference(&bytes, &TOKENS);
    let got = run(&bytes, &TOKENS, 1, 4, Isa::Scalar);
    let mut worst = 0f64;
    for (w, g) in want.iter().zip(&got) {
        for (a, b) in w.iter().zip(g) {
            worst = worst.max((a - *b as f64).abs() / (1.0 + a.abs()));
        }
    }
    assert!(worst < 2e-5, "{}: relative logit error {worst}", spec.arch);
}

#[test]
fn llama_matches_reference() {
    check_against_reference(BASE);
}

#[test]
fn full_rotary_untied_head_matches_reference() {
    check_against_reference(Spec { n_rot: 16, tied: false, kv_heads: 4, ..BASE });
}

#[test]
fn partial_rotary_and_linear_scaling_match_reference() {
    check_against_reference(Spec { n_rot: 8, scale: 4.0, kv_heads: 1, ..BASE });
}

#[test]
fn rope_frequency_factors_match_reference() {
    check_against_reference(Spec { freqs: true, ..BASE });
    check_against_reference(Spec { freqs: true, n_rot: 8, scale: 2.0, ..BASE });
}

/// Qwen 3: per-head Q/K RMSNorm before RoPE, head size != n_embd / n_heads.
#[test]
fn qwen3_qk_norms_match_reference() {
    check_against_reference(Spec { arch: "qwen3", head_dim: 24, n_rot: 24, ..BASE });
    check_against_reference(Spec { arch: "qwen3", tied: false, kv_heads: 1, ..BASE });
}

/// Gemma 3: scaled embeddings, Q/K norms, post-norms, GELU, and sliding
/// windows shorter than the tokens on five layers of six, whose RoPE base
/// (10,000) differs from the global layer's.
const GEMMA3: Spec = Spec { arch: "gemma3", layers: 6, heads: 4, kv_heads: 1, head_dim: 32, n_rot: 32, base: 1e6, window: 4, ..BASE };

#[test]
fn gemma3_matches_reference() {
    check_against_reference(GEMMA3);
    check_against_reference(Spec { window: 0, ..GEMMA3 });
    check_against_reference(Spec { tied: false, layers: 7, ff: 32, scale: 8.0, ..GEMMA3 });
}

#[test]
fn gemma3_sliding_window_and_local_rope_change_the_logits() {
    let (with, without) = (build(&GEMMA3, 42), build(&Spec { window: 0, ..GEMMA3 }, 42));
    let (a, b) = (run(&with, &TOKENS, 1, 4, Isa::Scalar), run(&without, &TOKENS, 1, 4, Isa::Scalar));
    // The first positions see no more than the window either way.
    let differs = |p: usize| a[p].iter().zip(&b[p]).any(|(x, y)| x != y);
    assert!(differs(1), "the local layers' RoPE base must differ from the global one");
    assert!(differs(10), "the window must cut the last position's attention");
    let g = Gguf::parse(&with).unwrap();
    let cfg = crate::model::ModelConfig::from_gguf(&g).unwrap();
    let windows: Vec<Option<usize>> = (0..6).map(|l| cfg.attention_window(l)).collect();
    assert_eq!(windows, [Some(4), Some(4), Some(4), Some(4), Some(4), None]);
    assert_eq!(cfg.rope_of(0).freq_base, 10000.0);
    assert_eq!(cfg.rope_of(5).freq_base, 1e6);
    assert_eq!(cfg.embd_scale, 8.0);
}

/// A file of an architecture that lacks one of its norms: a clear error
/// naming the architecture and the tensor, no panic.
#[test]
fn missing_architecture_norms_are_named() {
    for (arch, omit, layers) in [("gemma3", "post_ffw_norm", 6), ("gemma3", "attn_k_norm", 6), ("qwen3", "attn_q_norm", 2)] {
        let bytes = build(&Spec { arch, omit, layers, ..GEMMA3 }, 1);
        let g = Gguf::parse(&bytes).unwrap();
        let err = Model::from_gguf(&g, Kernels::for_isa(Isa::Scalar).unwrap()).err().expect("a missing norm must be refused");
        let msg = format!("{err}");
        let tensor = format!("blk.{}.{omit}.weight", layers - 1);
        assert!(msg.contains(&format!("{arch:?}")) && msg.contains(&tensor), "{arch}: {msg}");
    }
}

#[test]
fn neox_with_biases_matches_reference() {
    check_against_reference(Spec { arch: "qwen2", biases: true, tied: false, ..BASE });
    check_against_reference(Spec { arch: "qwen2", biases: true, n_rot: 8, ..BASE });
}

/// Logits with `isa`'s kernels are the scalar single-worker ones, bit for
/// bit, for any worker count, prefill batch and weight layout.
fn bit_identical_across_workers_batches_and_layouts(isa: Isa) {
    let gemma3 = Spec { ty: GgmlType::Q8_0, embd: 128, ff: 160, window: 3, ..GEMMA3 };
    let qwen3 = Spec { arch: "qwen3", ty: GgmlType::Q4_0, heads: 8, embd: 128, head_dim: 32, n_rot: 32, ff: 160, ..BASE };
    let specs = [GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::F16].map(|ty| Spec { ty, heads: 8, kv_heads: 2, embd: 128, ff: 160, ..BASE });
    for spec in specs.into_iter().chain([gemma3, qwen3]) {
        let (ty, bytes) = (spec.ty, build(&spec, 7));
        let want = run(&bytes, &TOKENS, 1, 11, Isa::Scalar);
        for (workers, batch) in [(1, 11), (2, 11), (3, 3), (4, 1), (4, 5)] {
            for packed in [false, true] {
                let got = run_with(&bytes, &TOKENS, workers, batch, isa, packed);
                assert!(
                    want.iter().flatten().zip(got.iter().flatten()).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{ty}: {workers} workers, batch {batch}, {isa}, packed {packed}"
                );
            }
        }
    }
}

#[test]
fn scalar_results_are_bit_identical_across_workers_batches_and_layouts() {
    bit_identical_across_workers_batches_and_layouts(Isa::Scalar);
}

/// The block types beyond Q4/Q8 (Q5_0, Q5_1, IQ4_NL, the K-quants, BF16) in
/// a whole model, 256 wide so that K-quant rows are whole super-blocks: logits
/// are finite and bit-identical to the scalar single-worker ones for `isa`,
/// any worker count, prefill batch and layout (packing repacks Q4_K and
/// Q6_K; the other types stay in ggml's layout).
fn new_types_bit_identical(isa: Isa) {
    use GgmlType as T;
    for ty in [T::Q5_0, T::Q5_1, T::IQ4_NL, T::Q2_K, T::Q3_K, T::Q4_K, T::Q5_K, T::Q6_K, T::BF16] {
        let bytes = build(&Spec { ty, heads: 8, kv_heads: 2, embd: 256, ff: 512, ..BASE }, 7);
        let want = run(&bytes, &TOKENS, 1, 11, Isa::Scalar);
        assert!(want.iter().flatten().all(|v| v.is_finite()), "{ty}: non-finite logits");
        for (workers, batch, packed) in [(1, 11, false), (2, 11, true), (3, 3, false), (4, 5, true)] {
            let got = run_with(&bytes, &TOKENS, workers, batch, isa, packed);
            assert!(
                want.iter().flatten().zip(got.iter().flatten()).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{ty}: {workers} workers, batch {batch}, {isa}, packed {packed}"
            );
        }
    }
}

#[test]
fn new_types_scalar_results_are_bit_identical_across_workers_and_batches() {
    new_types_bit_identical(Isa::Scalar);
}

#[test]
#[cfg_attr(not(axiom_cpu_avx2), ignore = "this machine lacks AVX2+FMA+F16C")]
fn new_types_avx2_results_are_bit_identical_to_scalar() {
    new_types_bit_identical(isa_kernels(Isa::Avx2).isa());
}

#[test]
#[cfg_attr(not(axiom_cpu_avx512), ignore = "this machine lacks AVX-512 F/BW/VL")]
fn new_types_avx512_results_are_bit_identical_to_scalar() {
    new_types_bit_identical(isa_kernels(Isa::Avx512).isa());
}

#[test]
#[cfg_attr(not(axiom_cpu_avx512vnni), ignore = "this machine lacks AVX-512 VNNI")]
fn new_types_avx512vnni_results_are_bit_identical_to_scalar() {
    new_types_bit_identical(isa_kernels(Isa::Avx512Vnni).isa());
}

#[test]
#[cfg_attr(not(axiom_cpu_avx2), ignore = "this machine lacks AVX2+FMA+F16C")]
fn avx2_results_are_bit_identical_to_scalar() {
    bit_identical_across_workers_batches_and_layouts(isa_kernels(Isa::Avx2).isa());
}

#[test]
#[cfg_attr(not(axiom_cpu_avx512), ignore = "this machine lacks AVX-512 F/BW/VL")]
fn avx512_results_are_bit_identical_to_scalar() {
    bit_identical_across_workers_batches_and_layouts(isa_kernels(Isa::Avx512).isa());
}

#[test]
#[cfg_attr(not(axiom_cpu_avx512vnni), ignore = "this machine lacks AVX-512 VNNI")]
fn avx512vnni_results_are_bit_identical_to_scalar() {
    bit_identical_across_workers_batches_and_layouts(isa_kernels(Isa::Avx512Vnni).isa());
}

/// A model with heads of 32 (whole Q8_0 blocks) and `n` tokens: several
/// attention chunks (`ATTN_CHUNK` = 128), the last one partial.
fn long_case(n: usize) -> (Vec<u8>, Vec<u32>) {
    let bytes = build(&Spec { heads: 4, kv_heads: 2, embd: 128, ff: 96, ..BASE }, 21);
    let mut rng = Lcg(77);
    let tokens = (0..n).map(|_| ((rng.next() + 1.0) * 20.0) as u32 % 40).collect();
    (bytes, tokens)
}

/// Attention over up to 300 positions (every prefix length 1..=300 is a
/// query: 127, 128, 129, 255, 256, 257 and lengths that are no multiple of
/// the chunk), for each KV type, against the f64 specification whose cache
/// holds the same rounded keys and values; by prefill tiles (batch 64) and
/// by single-token decode steps split over positions (batch 1, 2 workers).
#[test]
fn long_attention_matches_reference_for_every_kv_type() {
    use crate::state::ATTN_CHUNK;
    let (bytes, tokens) = long_case(300);
    assert!(tokens.len() > 2 * ATTN_CHUNK && !tokens.len().is_multiple_of(ATTN_CHUNK));
    let g = Gguf::parse(&bytes).unwrap();
    let model = Model::from_gguf(&g, Kernels::for_isa(Isa::Scalar).unwrap()).unwrap();
    let layers = ResidentLayers::new(&bytes, &model.layout).unwrap();
    let exact = crate::reference::logits(&model, &layers, &tokens);
    let worst = |a: &[Vec<f64>], b: &[Vec<f64>]| a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0f64, f64::max);
    for kv in KvType::ALL {
        let want = crate::reference::logits_with_kv(&model, &layers, &tokens, kv);
        // What storing keys and values in this type does to the logits.
        let effect = worst(&want, &exact);
        for (workers, batch) in [(1, 64), (2, 1)] {
            let got: Vec<Vec<f64>> = run_kv(&bytes, &tokens, workers, batch, Kernels::detect().isa(), false, kv).iter().map(|r| r.iter().map(|&v| v as f64).collect()).collect();
            let err = worst(&want, &got);
            std::eprintln!("{kv}, {workers} workers, batch {batch}: max logit error {err:e} (the type's own effect {effect:e})");
            // F32: f32 rounding only (logits are of order 1-5). F16, Q8_0:
            // the engine's f32 keys and values round to a neighbouring f16
            // step or Q8_0 quantum now and then where the f64 path's do not
            // (measured: 12% of F16's own effect on this random model, 0.01%
            // of Q8_0's), so the bound is a fraction of the type's effect.
            let bound = if kv == KvType::F32 { 2e-4 } else { effect / 4.0 };
            assert!(err < bound, "{kv}, {workers} workers, batch {batch}: max logit error {err} (bound {bound})");
        }
    }
}

/// The same long context gives the same bits for any worker count, batch
/// (prefill tiles or split decode steps) and ISA, with every KV type.
#[test]
fn long_attention_is_bit_identical_across_workers_batches_and_isas() {
    let (bytes, tokens) = long_case(300);
    let isas: Vec<Isa> = Isa::ALL.into_iter().filter(|&i| Kernels::for_isa(i).is_ok()).collect();
    for kv in KvType::ALL {
        let want = run_kv(&bytes, &tokens, 1, 300, Isa::Scalar, false, kv);
        for &isa in &isas {
            for (workers, batch) in [(1, 1), (2, 1), (3, 64), (4, 7), (2, 300)] {
                if isa == Isa::Scalar && batch == 1 && workers == 1 {
                    continue;
                }
                let got = run_kv(&bytes, &tokens, workers, batch, isa, false, kv);
                assert!(
                    want.iter().flatten().zip(got.iter().flatten()).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{kv}: {workers} workers, batch {batch}, {isa}"
                );
            }
        }
    }
}

struct Collect(Vec<u32>);

impl TokenSink for Collect {
    fn token(&mut self, id: u32) -> bool {
        self.0.push(id);
        self.0.len() < 100
    }
}

fn generate_with(bytes: &[u8], workers: usize, cfg: SamplerConfig, n: usize, stop: &[u32]) -> (Vec<u32>, GenerateOutcome) {
    let g = Gguf::parse(bytes).unwrap();
    let model = Model::from_gguf(&g, Kernels::detect()).unwrap();
    let resident = ResidentLayers::new(bytes, &model.layout).unwrap();
    let layers: &dyn LayerSource = &resident;
    let sc = StateConfig { n_ctx: 24, max_batch: 4, logit_rows: 1, kv_type: KvType::F32 };
    let mut mem = vec![0f32; SharedState::floats_needed(&model.config, &sc).unwrap()];
    let state = SharedState::new(&model, sc, &mut mem).unwrap();
    let mut scratches: Vec<Scratch> = (0..workers).map(|_| Scratch::new(&model.config, &sc)).collect();
    let mut sampler = Sampler::new(cfg, model.config.n_vocab);
    let mut sink = Collect(vec![]);
    let params = GenerateParams { prompt: &TOKENS[..5], start_pos: 0, max_new_tokens: n, stop_tokens: stop, prefill_batch: 4 };
    let lead = Mutex::new(Some(Leader { sampler: &mut sampler, sink: &mut sink }));
    let outcome = team(&model, &state, workers, layers, &mut scratches, |seat, s| {
        let l = if seat.index() == 0 { lead.lock().unwrap().take() } else { None };
        generate(seat, s, &params, l).unwrap()
    });
    (sink.0, outcome)
}

#[test]
fn generation_is_deterministic_and_stops() {
    let bytes = build(&Spec { ty: GgmlType::Q8_0, ..BASE }, 3);
    let cfg = SamplerConfig { temperature: 0.9, top_p: 0.95, top_k: 20, seed: 5, ..Default::default() };
    let (solo, out) = generate_with(&bytes, 1, cfg, 8, &[]);
    assert_eq!(solo.len(), 8);
    assert_eq!(out, GenerateOutcome { generated: 8, stop: StopReason::Limit, end_pos: 5 + 7 });
    for workers in 2..=4 {
        assert_eq!(generate_with(&bytes, workers, cfg, 8, &[]).0, solo, "{workers} workers");
    }
    // A stop token ends generation without being emitted.
    let (toks, out) = generate_with(&bytes, 2, cfg, 8, &[solo[3]]);
    let first = solo.iter().position(|&t| t == solo[3]).unwrap();
    assert_eq!(toks, solo[..first]);
    assert_eq!(out.stop, StopReason::StopToken);
    // The context (24) ends a long generation.
    let (toks, out) = generate_with(&bytes, 3, cfg, 100, &[]);
    assert_eq!(out.stop, StopReason::ContextFull);
    assert_eq!(toks.len(), 24 - 5 + 1);
}

#[test]
fn solo_worker_runs_generate() {
    let bytes = build(&Spec { ty: GgmlType::Q4_1, ..BASE }, 9);
    let g = Gguf::parse(&bytes).unwrap();
    let model = Model::from_gguf(&g, Kernels::detect()).unwrap();
    let resident = ResidentLayers::new(&bytes, &model.layout).unwrap();
    let worker = ResidentWorker::new(&resident);
    let sc = StateConfig { n_ctx: 16, max_batch: 2, logit_rows: 1, kv_type: KvType::F32 };
    let mut mem = vec![0f32; SharedState::floats_needed(&model.config, &sc).unwrap()];
    let state = SharedState::new(&model, sc, &mut mem).unwrap();
    let team = Team::new(&model, &state, 1).unwrap();
    let mut seat = team.seat(0, &worker).unwrap();
    let mut scratch = Scratch::new(&model.config, &sc);
    let mut sampler = Sampler::new(SamplerConfig::greedy(), model.config.n_vocab);
    let mut sink = Collect(vec![]);
    let p = GenerateParams { prompt: &[1, 2, 3], start_pos: 0, max_new_tokens: 4, stop_tokens: &[], prefill_batch: 2 };
    let out = generate(&mut seat, &mut scratch, &p, Some(Leader { sampler: &mut sampler, sink: &mut sink })).unwrap();
    assert_eq!(out.generated, 4);
    // Bad input is refused before any work.
    let bad = GenerateParams { prompt: &[1, 99], ..p };
    let err = generate(&mut seat, &mut scratch, &bad, Some(Leader { sampler: &mut sampler, sink: &mut sink })).unwrap_err();
    assert_eq!(err, GenerateError::BadToken { id: 99, n_vocab: 40 });
    let long = [1u32; 17];
    let err = generate(&mut seat, &mut scratch, &GenerateParams { prompt: &long, ..p }, Some(Leader { sampler: &mut sampler, sink: &mut sink })).unwrap_err();
    assert!(matches!(err, GenerateError::PromptTooLong { .. }));
}

#[test]
fn layer_views_accept_padding_and_refuse_short_bytes() {
    let bytes = build(&Spec { ty: GgmlType::Q4_1, ..BASE }, 11);
    let g = Gguf::parse(&bytes).unwrap();
    let model = Model::from_gguf(&g, Kernels::detect()).unwrap();
    let l = &model.layout.layers[1];
    let extent = crate::model::extent_bytes(&bytes, &l.extent).unwrap();
    // A streamed slot holds the extent plus padding (a packed image pads to 4 KiB).
    let mut slot = extent.to_vec();
    slot.resize(extent.len().next_multiple_of(4096), 0);
    assert!(LayerWeights::from_extent(l, &slot).is_ok());
    assert!(matches!(LayerWeights::from_extent(l, &extent[..extent.len() - 1]), Err(crate::gguf::GgufError::ExtentMismatch { .. })));
    // Packing a slot works the same way.
    let plan = crate::model::PackedLayerPlan::new(l);
    let mut storage = vec![0u8; plan.bytes + PACK_ALIGN];
    let area = aligned_part(&mut storage, PACK_ALIGN, plan.bytes).unwrap();
    crate::model::packed::pack_layer(l, &plan, &slot, area).unwrap();
    assert!(LayerWeights::from_packed(l, &plan, &slot, area).is_ok());
    let mut misaligned = vec![0u8; plan.bytes + PACK_ALIGN + 1];
    let off = aligned_part(&mut misaligned, PACK_ALIGN, plan.bytes + 1).unwrap();
    assert!(crate::model::packed::pack_layer(l, &plan, &slot, &mut off[1..]).is_err());
}

#[test]
fn a_team_hands_out_each_seat_once_and_owns_its_state() {
    let bytes = build(&Spec { ty: GgmlType::Q8_0, ..BASE }, 13);
    let g = Gguf::parse(&bytes).unwrap();
    let model = Model::from_gguf(&g, Kernels::detect()).unwrap();
    let resident = ResidentLayers::new(&bytes, &model.layout).unwrap();
    let worker = ResidentWorker::new(&resident);
    let sc = StateConfig { n_ctx: 8, max_batch: 2, logit_rows: 1, kv_type: KvType::F32 };
    let mut mem = vec![0f32; SharedState::floats_needed(&model.config, &sc).unwrap()];
    let state = SharedState::new(&model, sc, &mut mem).unwrap();

    assert_eq!(Team::new(&model, &state, 0).err(), Some(TeamError::Empty));
    let team = Team::new(&model, &state, 2).unwrap();
    assert_eq!(Team::new(&model, &state, 2).err(), Some(TeamError::StateInUse));
    assert!(team.seat(1, &worker).is_ok());
    assert_eq!(team.seat(1, &worker).err(), Some(TeamError::SeatTaken { index: 1 }));
    assert_eq!(team.seat(2, &worker).err(), Some(TeamError::NoSuchSeat { index: 2, count: 2 }));
    assert_eq!(team.seats(&worker).err(), Some(TeamError::SeatTaken { index: 1 }));
    drop(team);
    assert!(Team::new(&model, &state, 1).is_ok(), "a dropped team frees the state");

    // A state sized for another model is refused.
    let other_bytes = build(&Spec { ty: GgmlType::Q8_0, embd: 128, ..BASE }, 13);
    let other_g = Gguf::parse(&other_bytes).unwrap();
    let other = Model::from_gguf(&other_g, Kernels::detect()).unwrap();
    assert_eq!(Team::new(&other, &state, 1).err(), Some(TeamError::StateMismatch));
}

/// Runs `f(seat, scratch)` on both seats of a team of two threads and
/// returns whether each one panicked.
fn both_seats(bytes: &[u8], f: impl Fn(&mut Seat<'_, ResidentWorker<'_>>, &mut Scratch) + Sync) -> Vec<bool> {
    let g = Gguf::parse(bytes).unwrap();
    let model = Model::from_gguf(&g, Kernels::detect()).unwrap();
    let resident = ResidentLayers::new(bytes, &model.layout).unwrap();
    let sc = StateConfig { n_ctx: 8, max_batch: 4, logit_rows: 1, kv_type: KvType::F32 };
    let mut mem = vec![0f32; SharedState::floats_needed(&model.config, &sc).unwrap()];
    let state = SharedState::new(&model, sc, &mut mem).unwrap();
    let team = Team::new(&model, &state, 2).unwrap();
    let worker = ResidentWorker::yielding(&resident, std::thread::yield_now);
    let seats = team.seats(&worker).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = seats
            .into_iter()
            .map(|mut seat| {
                let (model, f) = (&model, &f);
                s.spawn(move || {
                    let mut scratch = Scratch::new(&model.config, &sc);
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut seat, &mut scratch))).is_err()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn seats_given_different_batches_stop_before_writing() {
    let bytes = build(&Spec { ty: GgmlType::Q8_0, ..BASE }, 17);
    // Seat 1 gets one token more than seat 0: its tiles would overlap seat 0's.
    let panicked = both_seats(&bytes, |seat, scratch| {
        let tokens: &[u32] = if seat.index() == 0 { &[1, 2] } else { &[1, 2, 3] };
        forward(seat, scratch, &Batch { tokens, pos: 0, logits: Logits::Last });
    });
    assert_eq!(panicked, [true, true], "both seats stop: the one that disagrees, and the one waiting for it");
    // Generations from different prompts, and a generation beside a forward call.
    let params = |prompt| GenerateParams { prompt, start_pos: 0, max_new_tokens: 2, stop_tokens: &[], prefill_batch: 4 };
    let panicked = both_seats(&bytes, |seat, scratch| {
        let mut sampler = Sampler::new(SamplerConfig::greedy(), 40);
        let mut sink = Collect(vec![]);
        let leader = (seat.index() == 0).then_some(Leader { sampler: &mut sampler, sink: &mut sink });
        let prompt: &[u32] = if seat.index() == 0 { &[1, 2] } else { &[1, 3] };
        let _ = generate(seat, scratch, &params(prompt), leader);
    });
    assert_eq!(panicked, [true, true]);
    let panicked = both_seats(&bytes, |seat, scratch| {
        if seat.index() == 0 {
            let mut sampler = Sampler::new(SamplerConfig::greedy(), 40);
            let mut sink = Collect(vec![]);
            let _ = generate(seat, scratch, &params(&[1, 2]), Some(Leader { sampler: &mut sampler, sink: &mut sink }));
        } else {
            forward(seat, scratch, &Batch { tokens: &[1, 2], pos: 0, logits: Logits::Last });
        }
    });
    assert_eq!(panicked, [true, true]);
    // The same calls on both seats run.
    let panicked = both_seats(&bytes, |seat, scratch| forward(seat, scratch, &Batch { tokens: &[1, 2], pos: 0, logits: Logits::Last }));
    assert_eq!(panicked, [false, false]);
}

/// Gemma 3's query scale: 1/sqrt(head_dim), except for the 27B (62 layers),
/// which llama.cpp scales by 1/sqrt(n_embd / n_heads).
#[test]
fn gemma3_query_scale_follows_llama_cpp() {
    let config = |layers: u32| {
        let mut b = GgufBuilder::new(3);
        b.kv_str("general.architecture", "gemma3");
        for (k, v) in [("block_count", layers), ("context_length", 64), ("embedding_length", 96), ("feed_forward_length", 128), ("attention.head_count", 4), ("attention.key_length", 32)] {
            b.kv_u32(&format!("gemma3.{k}"), v);
        }
        b.kv_f32("gemma3.attention.layer_norm_rms_epsilon", 1e-6);
        b.tensor_f32("token_embd.weight", &[96, 2], &[0.0; 192]);
        let bytes = b.finish();
        crate::model::ModelConfig::from_gguf(&Gguf::parse(&bytes).unwrap()).unwrap()
    };
    assert_eq!(config(18).attn_scale, 1.0 / 32f32.sqrt());
    assert_eq!(config(62).attn_scale, 1.0 / 24f32.sqrt());
    assert_eq!(config(18).sliding_window, None, "no window key: every layer global, as llama.cpp");
}
