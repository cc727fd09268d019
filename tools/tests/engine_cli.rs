//! The engine's host subcommands end to end (`axiom generate | score |
//! perplexity`), on the default model, against llama.cpp's outputs in
//! kernel/engine/testdata/smollm2 and for determinism across threads and ISAs.
//! Needs the model in the cache: these tests fail, with the command to fetch
//! it, when it is missing.

use std::process::{Command, Output};

use axiom_testkit::{default_model, repo_root};
use serde_json::Value;

fn goldens() -> Value {
    serde_json::from_str(&axiom_testkit::read_testdata_string("smollm2/goldens-q4_1.json")).unwrap()
}

fn axiom(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_axiom")).args(args).output().expect("cannot run axiom");
    out
}

fn ok(args: &[&str]) -> (String, String) {
    let out = axiom(args);
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "axiom {args:?} failed: {stderr}");
    (stdout, stderr)
}

fn ids_arg(v: &Value) -> String {
    v.as_array().unwrap().iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
}

#[test]
fn greedy_generate_completes_paris_and_reports_stats() {
    let model = default_model();
    let (stdout, stderr) = ok(&["generate", "--model", model.to_str().unwrap(), "--prompt", "The capital of France is", "--temp", "0", "--tokens", "8"]);
    assert!(stdout.starts_with(" Paris"), "generated {stdout:?}");
    let last = stderr.lines().last().unwrap();
    let stats: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("last stderr line is not JSON ({e}): {last}"));
    assert!(last.starts_with("{\"prefill_tokens\":5,\"prefill_tok_s\":"), "{last}");
    assert_eq!(stats["decode_tokens"], 8);
    assert!(stats["decode_tok_s"].as_f64().unwrap() > 0.0 && stats["prefill_tok_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn greedy_generate_starts_with_llama_cpp_confident_text() {
    let model = default_model();
    for case in goldens()["cases"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        let confident = case["confident_text"].as_str().unwrap();
        for threads in ["1", "2"] {
            let (stdout, _) = ok(&["generate", "--model", model.to_str().unwrap(), "--prompt", prompt, "--temp", "0", "--tokens", "12", "--threads", threads]);
            assert!(stdout.starts_with(confident), "{}: generated {stdout:?}, llama.cpp is confident of {confident:?}", case["name"]);
        }
    }
}

#[test]
fn score_matches_goldens_shape_and_top1() {
    let model = default_model();
    let g = goldens();
    let case = &g["cases"][2];
    let ids: Vec<Value> = case["prompt_ids"].as_array().unwrap().iter().chain(case["greedy_ids"].as_array().unwrap()).cloned().collect();
    let (stdout, _) = ok(&["score", "--model", model.to_str().unwrap(), "--ids", &ids_arg(&Value::Array(ids.clone())), "--top", "5"]);
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), ids.len());
    for (i, (ours, want)) in lines.iter().zip(case["teacher_forced"].as_array().unwrap()).enumerate() {
        assert_eq!(ours["pos"], i);
        assert_eq!(ours["top_ids"].as_array().unwrap().len(), 5);
        let wl = want["top_logits"].as_array().unwrap();
        if wl[0].as_f64().unwrap() - wl[1].as_f64().unwrap() > 0.5 {
            assert_eq!(ours["top_ids"][0], want["top_ids"][0], "position {i}");
        }
    }
    // --prompt tokenizes with special tokens parsed: the same positions.
    let (by_text, _) = ok(&["score", "--model", model.to_str().unwrap(), "--prompt", case["prompt"].as_str().unwrap()]);
    assert_eq!(by_text.lines().count(), case["prompt_ids"].as_array().unwrap().len());
    assert_eq!(by_text.lines().next(), stdout.lines().next());
}

#[test]
fn score_is_bit_identical_across_threads_isas_and_batches() {
    let model = default_model();
    let m = model.to_str().unwrap();
    let ids = "504,3575,282,4649,314,7042,30,198,198,504,1797";
    let (reference, _) = ok(&["score", "--model", m, "--ids", ids, "--threads", "1"]);
    for extra in [&["--threads", "2"][..], &["--threads", "3", "--batch", "4"], &["--threads", "2", "--isa", "scalar"], &["--batch", "1"]] {
        let mut args = vec!["score", "--model", m, "--ids", ids];
        args.extend_from_slice(extra);
        assert_eq!(ok(&args).0, reference, "{extra:?}");
    }
}

#[test]
fn perplexity_runs_like_llama_cpp() {
    let model = default_model();
    let text = repo_root().join("DEVELOPERS.md");
    let (stdout, stderr) = ok(&["perplexity", "--model", model.to_str().unwrap(), "--file", text.to_str().unwrap(), "--ctx", "128", "--chunks", "3"]);
    assert!(stdout.starts_with("[1]"), "{stdout}");
    let last = stdout.lines().last().unwrap();
    let ppl: f64 = last.strip_prefix("Final estimate: PPL = ").unwrap().split(' ').next().unwrap().parse().unwrap();
    // English prose under a small instruct model: well above 1, well below the vocabulary size.
    assert!(ppl > 2.0 && ppl < 200.0, "ppl {ppl}");
    let stats: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(stats["tokens_scored"], 3 * 63);
    // Too short a text is refused with a clear message.
    let out = axiom(&["perplexity", "--model", model.to_str().unwrap(), "--file", text.to_str().unwrap(), "--ctx", "8192"]);
    assert!(!out.status.success());
}

/// Perplexity at a 2048-token context with the default F16 KV cache, on the
/// GPL 3 text, within 1% of llama-perplexity's (same model, `-c 2048 -ctk
/// f16 -ctv f16 -fa off`, testdata/perplexity/llama-perplexity.json). One
/// chunk (2048 tokens of prefill, 1023 scored) keeps the test short: it is
/// compared with llama.cpp's running perplexity after its first chunk.
#[test]
fn perplexity_at_ctx_2048_with_f16_kv_is_within_1_percent_of_llama_cpp() {
    let model = default_model();
    let refs: Value = serde_json::from_str(&axiom_testkit::read_testdata_string("perplexity/llama-perplexity.json")).unwrap();
    let run = refs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["file"] == "SmolLM2-135M-Instruct.Q4_1.gguf" && r["n_ctx"] == 2048 && r["flash_attn"] == "off")
        .expect("the Q4_1 ctx 2048 reference run");
    assert_eq!((run["type_k"].as_str(), run["type_v"].as_str()), (Some("f16"), Some("f16")));
    let want = run["running_ppl"][0].as_f64().unwrap();
    let text = axiom_testkit::testdata("perplexity/gpl-3.0.txt");
    let (stdout, stderr) = ok(&["perplexity", "--model", model.to_str().unwrap(), "--file", text.to_str().unwrap(), "--ctx", "2048", "--chunks", "1", "--kv-type", "f16"]);
    let stats: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(stats["tokens_scored"], 1023, "{stdout}");
    let ppl = stats["ppl"].as_f64().unwrap();
    eprintln!("perplexity {ppl:.4}, llama.cpp {want:.4}");
    assert!((ppl / want - 1.0).abs() < 0.01, "perplexity {ppl} vs llama.cpp's {want}");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let model = default_model();
    let m = model.to_str().unwrap();
    let check = |args: &[&str], needle: &str| {
        let out = axiom(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: expected {needle:?} in {stderr}");
    };
    check(&["score", "--model", m, "--ids", "1,99999"], "outside the vocabulary");
    check(&["generate", "--model", m, "--prompt", "x", "--isa", "sse9"], "unknown --isa");
    check(&["generate", "--model", m, "--prompt", "x", "--kv-type", "q4"], "unknown --kv-type");
    check(&["generate", "--model", "/nonexistent.gguf", "--prompt", "x"], "does not exist");

    // A truncated copy of the model, and a file that is not GGUF.
    let dir = std::env::temp_dir().join(format!("axiom-engine-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(&model).unwrap();
    let truncated = dir.join("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    check(&["generate", "--model", truncated.to_str().unwrap(), "--prompt", "x"], "truncated GGUF file");
    let garbage = dir.join("garbage.gguf");
    std::fs::write(&garbage, b"this is not a model file at all").unwrap();
    check(&["score", "--model", garbage.to_str().unwrap(), "--ids", "1"], "not a GGUF file");
    // The default model path, in an empty cache: tells how to fetch it.
    let out = Command::new(env!("CARGO_BIN_EXE_axiom")).args(["generate", "--prompt", "x"]).env("AXIOM_CACHE", &dir).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("tools/fetch-model.sh"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The generated ids from `axiom generate`'s statistics line.
fn generated_ids(stderr: &str) -> Vec<u64> {
    let stats: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    stats["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect()
}

#[test]
fn messages_are_one_conversation_in_the_chat_template() {
    let model = default_model();
    let m = model.to_str().unwrap();
    let base = ["generate", "--model", m, "--chat", "--temp", "0", "--tokens", "6"];
    let (_, one_shot) = ok(&[&base[..], &["--prompt", "Hi"]].concat());
    let (_, listed) = ok(&[&base[..], &["--messages", r#"[{"role":"user","content":"Hi"}]"#]].concat());
    assert_eq!(generated_ids(&listed), generated_ids(&one_shot), "one user message is --prompt --chat");
    // A follow-up: the earlier turns are part of the context.
    let convo = r#"[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"},{"role":"user","content":"Name a color."}]"#;
    let (_, follow) = ok(&[&base[..], &["--messages", convo]].concat());
    let stats: Value = serde_json::from_str(follow.lines().last().unwrap()).unwrap();
    let (_, alone) = ok(&[&base[..], &["--prompt", "Name a color."]].concat());
    let alone: Value = serde_json::from_str(alone.lines().last().unwrap()).unwrap();
    assert!(stats["prefill_tokens"].as_u64().unwrap() > alone["prefill_tokens"].as_u64().unwrap(), "the context holds the earlier turns");
    for (bad, why) in [
        (r#"[{"role":"assistant","content":"x"}]"#, "the last message must be the user's"),
        (r#"[{"role":"user","content":"a"},{"role":"user","content":"b"}]"#, "must alternate"),
        (r#"[{"role":"bot","content":"a"}]"#, "is not system, user or assistant"),
        (r#"{"role":"user"}"#, "JSON list"),
    ] {
        let out = axiom(&[&base[..], &["--messages", bad]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(why), "--messages {bad}: {stderr}");
    }
}

/// The JSON statistics lines of `axiom generate` (one per answer).
fn stats_lines(stderr: &str) -> Vec<Value> {
    stderr.lines().filter(|l| l.starts_with("{\"prefill_tokens\"")).map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn interactive_turns_reuse_the_cache_and_answer_as_the_whole_conversation() {
    use std::io::Write;
    use std::process::Stdio;
    let model = default_model();
    let m = model.to_str().unwrap();
    let lines = ["Hi", "Name a color.", "Thanks"];
    let mut child = Command::new(env!("CARGO_BIN_EXE_axiom"))
        .args(["generate", "--model", m, "--chat", "--interactive", "--temp", "0", "--tokens", "6"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A line that is not UTF-8 is refused and the conversation goes on.
    let mut input = format!("{}\n{}\n", lines[0], lines[1]).into_bytes();
    input.extend_from_slice(b"\xff\xfe\n/stats\n");
    input.extend_from_slice(format!("{}\n/quit\n", lines[2]).as_bytes());
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("not valid UTF-8") && stderr.contains("stats: 2 turns"), "{stderr}");
    let stats = stats_lines(&stderr);
    assert_eq!(stats.len(), 3, "{stderr}");
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap();
    assert_eq!(n(&stats[0], "reused_tokens"), 0);
    for i in 1..3 {
        let before = n(&stats[i - 1], "context_tokens") + n(&stats[i - 1], "decode_tokens") - u64::from(stats[i - 1]["stop"] == "limit");
        assert_eq!(n(&stats[i], "reused_tokens"), before, "turn {i} reuses the whole cache");
        assert_eq!(n(&stats[i], "prefill_tokens") + before, n(&stats[i], "context_tokens"), "turn {i} evaluates only its new tokens");
    }
    // The same conversation given whole: the same answers.
    let bytes = std::fs::read(&model).unwrap();
    let tokenizer = axiom_engine::tokenizer::Tokenizer::from_gguf(&axiom_engine::gguf::Gguf::parse(&bytes).unwrap()).unwrap();
    let mut messages = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        messages.push(serde_json::json!({"role": "user", "content": line}));
        let (_, whole) = ok(&["generate", "--model", m, "--chat", "--temp", "0", "--tokens", "6", "--messages", &Value::Array(messages.clone()).to_string()]);
        let ids: Vec<u32> = generated_ids(&whole).iter().map(|&x| x as u32).collect();
        let turn: Vec<u32> = stats[i]["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(turn, ids, "turn {i}: incremental and whole-conversation answers differ");
        messages.push(serde_json::json!({"role": "assistant", "content": axiom_engine::conversation::answer_text(&tokenizer, &ids)}));
    }
}
