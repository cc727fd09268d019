//! The forward pass on the default model requantized by llama.cpp's own
//! `llama-quantize` into the new block types, against llama.cpp's outputs on
//! the same files (`testdata/smollm2-requant/goldens-<type>.json`, made by
//! `benchmarks/engine/goldens/make-goldens.sh`):
//!
//! - teacher-forced top-1 equals llama.cpp's at every position where
//!   llama.cpp's margin between its first two logits exceeds
//!   `max(0.5, 2 * spread)` (`spread`: how much llama.cpp's own logits move
//!   with the batch size, recorded in the goldens);
//! - greedy generation equals llama.cpp's up to its first near-tie
//!   (`confident_tokens`).
//!
//! The models are made by `benchmarks/engine/goldens/requantize.sh` (which
//! builds llama.cpp's `llama-quantize` and checks each file's SHA-256) into
//! the model cache; `tools/setup.sh` runs it, and a missing model fails the
//! test with that command.
//!
//! Measured (this machine, f16 KV cache as llama.cpp): all 9 files pass,
//! top-1 equal at all 48-86 confident positions per file; logits of
//! llama.cpp's top-5 within max 0.74 (Q4_K_M) .. 1.76 (Q5_K_M), mean 0.15 ..
//! 0.30 (0.71 / 0.15 on the Q4_1 default model). Both engines round
//! activations to 8 bits the same way (the K-quants' per 256, Q8_K), but sum
//! in different orders, so the logits are not asserted beyond the top-1 and
//! greedy checks. (With the K-quants' activations rounded per 32 instead,
//! Q6_K missed one borderline position: margin 0.536 against 0.524.)
//! Run in release: `cargo test --release -p axiom-engine --test requant_goldens`.

mod common;

use axiom_engine::gguf::Gguf;
use axiom_engine::matmul::Kernels;
use axiom_engine::model::packed::{aligned_part, PACK_ALIGN};
use axiom_engine::model::{extent_bytes, LayerSource, Model, PackedLayers, PackedPlan, ResidentLayers};
use axiom_engine::state::KvType;
use common::goldens::Case;

/// The goldens of the requantized model of type `ty`, and the file they were made with.
fn goldens(ty: &str) -> (String, Vec<Case>) {
    let g = common::goldens::read(&format!("smollm2-requant/goldens-{}.json", ty.to_lowercase()));
    (g.model_file.expect("the requantized goldens name their model file"), g.cases)
}

/// Logits of every position of `tokens` (teacher-forced), 2 threads, one batch.
fn all_logits(model: &Model<'_>, layers: &dyn LayerSource, tokens: &[u32]) -> Vec<Vec<f32>> {
    common::all_logits(model, layers, tokens, 2, tokens.len(), KvType::default())
}

/// Greedy generation on 2 threads, stopping at SmolLM2's end of text (2).
fn greedy(model: &Model<'_>, layers: &dyn LayerSource, prompt: &[u32], n: usize) -> Vec<u32> {
    common::greedy(model, layers, prompt, n, &[2], 2, 16).0
}

fn top2(logits: &[f32]) -> [u32; 2] {
    let mut v: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    [v[0].0, v[1].0]
}

/// The checks of the module comment on the requantized model of type `ty`.
fn check(ty: &str) {
    let (file, cases) = goldens(ty);
    let path = axiom_testkit::model_path(&file).unwrap_or_else(|why| panic!("{why}"));
    assert!(path.is_file(), "the model {} is missing: make it with benchmarks/engine/goldens/requantize.sh {ty}", path.display());
    let bytes = axiom_testkit::read(&path);
    let g = Gguf::parse(&bytes).unwrap();
    let model = Model::from_gguf(&g, Kernels::detect()).unwrap_or_else(|e| panic!("{file}: {e}"));
    let layers = ResidentLayers::new(&bytes, &model.layout).unwrap();
    let (mut checked, mut positions, mut worst, mut sum, mut count) = (0, 0, 0f32, 0f64, 0usize);
    for case in &cases {
        let tokens: Vec<u32> = case.prompt_ids.iter().chain(&case.greedy_ids).copied().collect();
        assert_eq!(case.teacher.len(), tokens.len());
        let logits = all_logits(&model, &layers, &tokens);
        for (pos, (p, got)) in case.teacher.iter().zip(&logits).enumerate() {
            let (ids, want, spread) = (&p.top_ids, &p.top_logits, p.spread);
            positions += 1;
            if p.confident() {
                let ours = top2(got);
                assert_eq!(ours[0], ids[0], "{ty} case {} pos {pos}: top-1 {} vs llama.cpp {} (margin {}, spread {spread})", case.name, ours[0], ids[0], want[0] - want[1]);
                checked += 1;
            }
            for (&id, &l) in ids.iter().zip(want) {
                let d = (got[id as usize] - l).abs();
                worst = worst.max(d);
                sum += d as f64;
                count += 1;
            }
        }
        let ids = greedy(&model, &layers, &case.prompt_ids, case.greedy_ids.len());
        let agree = ids.iter().zip(&case.greedy_ids).take_while(|(a, b)| a == b).count();
        let confident = case.confident_tokens.expect("the requantized goldens record confident_tokens");
        eprintln!("{ty} {}: {agree} of {} greedy tokens agree with llama.cpp (first near-tie after {})", case.name, ids.len(), confident);
        assert!(agree >= confident, "{ty} case {}: only {agree} greedy tokens agree, llama.cpp has no near-tie for {confident}", case.name);
    }
    eprintln!(
        "{ty}: top-1 equal at all {checked} of {positions} positions with a clear margin; logits of llama.cpp's top-5: max |diff| {worst:.3}, mean {:.3}",
        sum / count as f64
    );
    assert!(checked > positions / 2, "{ty}: only {checked} of {positions} positions have a clear margin");
}

#[test]
fn q4_k_m_matches_llama_cpp() {
    check("Q4_K_M");
}

#[test]
fn q6_k_matches_llama_cpp() {
    check("Q6_K");
}

#[test]
fn q5_0_matches_llama_cpp() {
    check("Q5_0");
}

#[test]
fn q5_k_m_matches_llama_cpp() {
    check("Q5_K_M");
}

#[test]
fn q3_k_m_matches_llama_cpp() {
    check("Q3_K_M");
}

#[test]
fn q2_k_matches_llama_cpp() {
    check("Q2_K");
}

#[test]
fn q2_k_pure_matches_llama_cpp() {
    check("Q2_K_PURE");
}

#[test]
fn q5_1_matches_llama_cpp() {
    check("Q5_1");
}

#[test]
fn iq4_nl_matches_llama_cpp() {
    check("IQ4_NL");
}

/// The requantized models whose matrices are repacked at load (Q5_0, Q5_1,
/// IQ4_NL; the host does it by default): the logits of the first case's
/// tokens, bit for bit those of the file's layout, prefilled in one batch
/// and in batches of 5 (the batched kernels' token tiles and a single token).
#[test]
fn packed_types_give_the_file_layouts_logits() {
    for ty in ["Q5_0", "Q5_1", "IQ4_NL"] {
        let (file, cases) = goldens(ty);
        let path = axiom_testkit::model_path(&file).unwrap_or_else(|why| panic!("{why}"));
        assert!(path.is_file(), "the model {} is missing: make it with benchmarks/engine/goldens/requantize.sh {ty}", path.display());
        let bytes = axiom_testkit::read(&path);
        let g = Gguf::parse(&bytes).unwrap();
        let model = Model::from_gguf(&g, Kernels::detect()).unwrap();
        let resident = ResidentLayers::new(&bytes, &model.layout).unwrap();
        let tokens: Vec<u32> = cases[0].prompt_ids.iter().chain(&cases[0].greedy_ids).take(24).copied().collect();
        let reference = all_logits(&model, &resident, &tokens);

        let plan = PackedPlan::new(&model.layout);
        let mut storage = vec![0u8; plan.bytes() + PACK_ALIGN];
        let buf = aligned_part(&mut storage, PACK_ALIGN, plan.bytes()).unwrap();
        let globals = extent_bytes(&bytes, &model.layout.globals.extent).unwrap();
        let packed = PackedLayers::pack(resident.clone(), &model.layout, globals, plan, buf).unwrap();
        let l0 = &model.layout.layers[0];
        let packed_types: Vec<_> = [&l0.wq, &l0.wk, &l0.wv, &l0.wo, &l0.w_gate, &l0.w_up, &l0.w_down]
            .iter()
            .zip(&axiom_engine::model::PackedLayerPlan::new(l0).matrices)
            .filter_map(|(t, r)| r.as_ref().map(|_| t.ty.to_string()))
            .collect();
        assert!(packed_types.iter().any(|t| t.eq_ignore_ascii_case(ty)), "{ty}: layer 0 packs {packed_types:?}");
        let mut packed_model = Model::from_gguf(&g, Kernels::detect()).unwrap();
        if let Some(head) = packed.output() {
            packed_model.globals.output = head;
        }
        for batch in [tokens.len(), 5] {
            let got = common::all_logits(&packed_model, &packed, &tokens, 2, batch, KvType::default());
            for (pos, (a, b)) in reference.iter().zip(&got).enumerate() {
                assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()), "{ty} packed, batch {batch}: logits differ at position {pos}");
            }
        }
        eprintln!("{ty}: packed logits equal the file layout's at {} positions", tokens.len());
    }
}
