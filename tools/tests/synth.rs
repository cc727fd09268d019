//! `axiom synth` end to end: synthetic models are valid GGUF files with the
//! default model's tokenizer, deterministic per seed, and the host engine
//! runs them with finite logits that have margins.

use std::path::{Path, PathBuf};
use std::process::Command;

use axiom_engine::gguf::Gguf;
use axiom_engine::model::ModelConfig;
use serde_json::Value;

fn axiom(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_axiom")).args(args).output().expect("cannot run axiom");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "axiom {args:?} failed: {stderr}");
    (stdout, stderr)
}

fn synth(shape: &str, ty: &str, seed: u64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("axiom-synth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{shape}-{ty}-{seed}.gguf"));
    axiom(&["synth", "--shape", shape, "--type", ty, "--seed", &seed.to_string(), out.to_str().unwrap()]);
    out
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn synthetic_models_are_valid_deterministic_gguf_with_the_default_tokenizer() {
    let a = std::fs::read(synth("tiny", "q4_0", 3)).unwrap();
    let again = std::fs::read(synth("tiny", "q4_0", 3)).unwrap();
    let other = std::fs::read(synth("tiny", "q4_0", 4)).unwrap();
    assert!(a == again, "same seed, same bytes");
    assert!(a.len() == other.len() && a != other, "another seed, other weights");
    let g = Gguf::parse(&a).expect("a valid GGUF");
    let cfg = ModelConfig::from_gguf(&g).expect("a llama config");
    assert_eq!((cfg.n_layers, cfg.n_embd, cfg.n_ff, cfg.n_heads, cfg.n_kv_heads), (2, 128, 384, 4, 2));
    let default = std::fs::read(axiom_testkit::default_model()).unwrap();
    let d = Gguf::parse(&default).unwrap();
    for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.model", "tokenizer.chat_template"] {
        assert_eq!(g.get(key), d.get(key), "{key} copied from the default model");
    }
    assert_eq!(cfg.n_vocab, ModelConfig::from_gguf(&d).unwrap().n_vocab);
}

#[test]
fn the_host_engine_runs_synthetic_models_with_finite_logits_and_margins() {
    for (shape, ty) in [("tiny", "q8_0"), ("llama-135m", "q4_1"), ("llama-135m", "q4_0")] {
        let model = synth(shape, ty, 11);
        let (stdout, _) = axiom(&["score", "--model", path(&model), "--prompt", "The capital of France is", "--top", "2"]);
        let mut margins = Vec::new();
        for line in stdout.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let logits: Vec<f64> = v["top_logits"].as_array().unwrap().iter().map(|x| x.as_f64().expect("a finite logit")).collect();
            assert!(logits.iter().all(|x| x.is_finite() && x.abs() < 1e4), "{shape} {ty}: {line}");
            margins.push(logits[0] - logits[1]);
        }
        assert_eq!(margins.len(), 5, "{shape} {ty}: one line per prompt token");
        let mean = margins.iter().sum::<f64>() / margins.len() as f64;
        assert!(mean > 0.05, "{shape} {ty}: greedy margins {margins:?}");
        let (_, stderr) = axiom(&["generate", "--model", path(&model), "--prompt", "The capital of France is", "--temp", "0", "--tokens", "4"]);
        let stats: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
        assert_eq!(stats["ids"].as_array().unwrap().len(), 4, "{shape} {ty}: {stderr}");
    }
}

#[test]
fn bad_shapes_and_types_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_axiom")).args(["synth", "--shape", "gpt-5", "/tmp/never.gguf"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("llama3-8b"));
    let out = Command::new(env!("CARGO_BIN_EXE_axiom")).args(["synth", "--shape", "tiny", "--type", "q4_k", "/tmp/never.gguf"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("q4_0"));
    assert!(!Path::new("/tmp/never.gguf").exists());
}
