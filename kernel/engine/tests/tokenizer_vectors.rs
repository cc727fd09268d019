//! The tokenizers against llama.cpp's own outputs:
//! - `shared/testdata/vocab/`: llama.cpp's tokenizer test vectors (`.inp` /
//!   `.out`) with their vocab-only GGUFs (SentencePiece `llama-spm`, BPE `gpt-2`);
//! - `shared/testdata/smollm2/`: the same strings with the default model's
//!   vocabulary, and the goldens' prompt ids (special tokens parsed).
//!
//! Like llama.cpp's `test-tokenizer-0`: tests are separated by
//! `\n__ggml_vocab_test__\n`, tokenized with `add_special = false` and
//! `parse_special = false`, and must match exactly.

use std::path::{Path, PathBuf};

use axiom_engine::gguf::{Gguf, GgufError};
use axiom_engine::tokenizer::{ChatMessage, Tokenizer, Utf8Stream};

fn testdata() -> PathBuf {
    let dir = match std::env::var_os("AXIOM_TESTDATA") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata"),
    };
    assert!(
        dir.join("vocab").is_dir(),
        "test data not found at {}: the repository expects shared/testdata beside it (or set AXIOM_TESTDATA)",
        dir.display()
    );
    dir
}

fn default_model() -> PathBuf {
    if let Some(p) = std::env::var_os("AXIOM_MODEL") {
        return PathBuf::from(p);
    }
    let cache = match std::env::var_os("AXIOM_CACHE") {
        Some(c) => PathBuf::from(c),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is not set")).join(".cache/axiom"),
    };
    let model = cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        model.exists(),
        "default model not found at {}: run tools/fetch-model.sh (or set AXIOM_MODEL)",
        model.display()
    );
    model
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Loads a tokenizer reading only the GGUF header, growing the prefix on
/// `NeedMore` as the kernel does.
fn load_tokenizer(path: &Path) -> Tokenizer {
    use std::io::Read;
    let file_size = std::fs::metadata(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display())).len();
    let mut want = 1 << 20;
    loop {
        let mut prefix = vec![0u8; want.min(file_size as usize)];
        std::fs::File::open(path).unwrap().read_exact(&mut prefix).unwrap();
        match Gguf::parse_header(&prefix, file_size) {
            Ok(g) => return Tokenizer::from_gguf(&g).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            Err(GgufError::NeedMore { bytes }) => want = bytes as usize,
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

/// (input text, expected ids) pairs of a `.inp` / `.out` test file pair.
fn read_vectors(inp: &Path, out: &Path) -> Vec<(String, Vec<u32>)> {
    let raw = String::from_utf8(read(inp)).unwrap();
    let sep = "\n__ggml_vocab_test__\n";
    let mut inputs = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        match raw[pos..].find(sep) {
            Some(i) => {
                inputs.push(raw[pos..pos + i].to_string());
                pos += i + sep.len();
            }
            None => {
                inputs.push(raw[pos..].to_string());
                break;
            }
        }
    }
    let outputs: Vec<Vec<u32>> = String::from_utf8(read(out))
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    assert_eq!(inputs.len(), outputs.len(), "{} and {} differ in test count", inp.display(), out.display());
    assert!(inputs.len() > 30, "too few tests in {}", inp.display());
    inputs.into_iter().zip(outputs).collect()
}

fn check_vectors(tok: &Tokenizer, inp: &Path, out: &Path) {
    let mut failures = Vec::new();
    let vectors = read_vectors(inp, out);
    for (text, expected) in &vectors {
        let got = tok.encode(text, false, false);
        if &got != expected {
            failures.push(format!("  {text:?}\n    expected {expected:?}\n    got      {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} vectors of {} differ:\n{}", failures.len(), vectors.len(), inp.display(), failures.join("\n"));
}

/// Every vector also round-trips through decode (llama.cpp's detokenize),
/// and the streamed pieces reassemble to the same text.
fn check_round_trip(tok: &Tokenizer, inp: &Path, out: &Path) {
    for (text, ids) in read_vectors(inp, out) {
        let decoded = tok.decode(&ids, false);
        let mut streamed = String::new();
        let mut stream = Utf8Stream::new();
        for &id in &ids {
            stream.push(tok.token_piece(id), &mut streamed);
        }
        stream.finish(&mut streamed);
        assert_eq!(streamed.as_bytes(), ids.iter().flat_map(|&id| tok.token_piece(id).to_vec()).collect::<Vec<_>>());
        // SentencePiece drops the leading space it added; clean-up passes may
        // change spacing for BPE vocabularies that request them.
        if !tok.add_space_prefix() {
            assert_eq!(streamed.as_bytes(), text.as_bytes(), "pieces of {text:?}");
        }
        let _ = decoded;
    }
}

#[test]
fn llama_cpp_vectors_gpt2() {
    let dir = testdata().join("vocab");
    let tok = load_tokenizer(&dir.join("ggml-vocab-gpt-2.gguf"));
    check_vectors(&tok, &dir.join("ggml-vocab-gpt-2.gguf.inp"), &dir.join("ggml-vocab-gpt-2.gguf.out"));
    check_round_trip(&tok, &dir.join("ggml-vocab-gpt-2.gguf.inp"), &dir.join("ggml-vocab-gpt-2.gguf.out"));
}

#[test]
fn llama_cpp_vectors_llama_spm() {
    let dir = testdata().join("vocab");
    let tok = load_tokenizer(&dir.join("ggml-vocab-llama-spm.gguf"));
    check_vectors(&tok, &dir.join("ggml-vocab-llama-spm.gguf.inp"), &dir.join("ggml-vocab-llama-spm.gguf.out"));
    // decode removes the space prefix the encoder added
    for (text, ids) in read_vectors(&dir.join("ggml-vocab-llama-spm.gguf.inp"), &dir.join("ggml-vocab-llama-spm.gguf.out")) {
        assert_eq!(tok.decode(&ids, false), text.as_bytes(), "decode of {text:?}");
    }
}

#[test]
fn smollm2_vectors() {
    let dir = testdata().join("smollm2");
    let tok = load_tokenizer(&default_model());
    check_vectors(&tok, &dir.join("tokenize.inp"), &dir.join("tokenize.out"));
    check_round_trip(&tok, &dir.join("tokenize.inp"), &dir.join("tokenize.out"));
}

#[test]
fn smollm2_golden_prompt_ids() {
    let tok = load_tokenizer(&default_model());
    let goldens: serde_json::Value = serde_json::from_slice(&read(&testdata().join("smollm2/goldens-q4_1.json"))).unwrap();
    let cases = goldens["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let prompt = case["prompt"].as_str().unwrap();
        let expected: Vec<u32> = case["prompt_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        // The goldens were made without BOS (the model's metadata says not to
        // add one), special tokens parsed.
        assert_eq!(tok.encode(prompt, true, true), expected, "prompt {prompt:?}");
        // The greedy continuations decode to llama.cpp's text.
        let greedy: Vec<u32> = case["greedy_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let text = String::from_utf8(tok.decode(&greedy, false)).unwrap();
        assert_eq!(text, case["greedy_text"].as_str().unwrap(), "greedy text of {prompt:?}");
    }
}

#[test]
fn smollm2_special_tokens_and_chat_template() {
    let tok = load_tokenizer(&default_model());
    let sp = tok.special_tokens();
    assert_eq!((sp.bos, sp.eos, sp.eot, sp.unk, sp.pad), (Some(1), Some(2), Some(2), Some(0), Some(2)));
    assert!(!tok.add_bos() && !tok.add_eos());
    assert!(tok.is_eog(2) && tok.is_eog(0) && !tok.is_eog(1));
    assert_eq!(sp.newline, Some(198));
    let template = tok.chat_template().unwrap();
    assert_eq!(template.name(), "chatml");
    let ids = tok.encode_chat(&[ChatMessage { role: "user", content: "What is 2+2?" }], true).unwrap();
    let rendered = String::from_utf8(tok.decode(&ids, true)).unwrap();
    assert_eq!(
        rendered,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    );
    // The user turn is tokenized exactly like the golden "chat-math" prompt.
    let tail = tok.encode("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", true, true);
    assert!(ids.ends_with(&tail));
}

#[test]
fn smollm2_tokenizer_is_compact() {
    // The kernel keeps the tokenizer resident: bound its tables.
    let start = std::time::Instant::now();
    let tok = load_tokenizer(&default_model());
    let elapsed = start.elapsed();
    eprintln!("SmolLM2 tokenizer: {} bytes of tables, loaded in {elapsed:?}", tok.heap_bytes());
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(tok.merge_count(), 48900);
    assert!(tok.heap_bytes() < 8 << 20, "{} bytes", tok.heap_bytes());
}

/// xorshift64*: a tiny deterministic generator for the randomized tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random text mixing ASCII, whitespace runs, digits, contractions, Latin,
/// Cyrillic, CJK, emoji, combining marks, unassigned and private-use code
/// points, and special-token spellings.
fn random_text(rng: &mut Rng) -> String {
    const PARTS: &[&str] = &[
        " ", "  ", "\n", "\n\n", "\t", "\r\n", "'s", "'LL", "'", "0", "123", "4567", "½", "a", "Hello", " world", "é",
        "ñ", "я", "Привет", "我", "想", "🚀", "😶‍🌫️", "\u{301}", "\u{378}", "\u{E000}", "!", "?!", "...", "$", "<|im_start|>",
        "<|im_end|>", "<s>", "</s>", "\u{A0}", "\u{3000}", "ᄀ", "ﬀ",
    ];
    let n = rng.below(24) as usize;
    (0..n).map(|_| PARTS[rng.below(PARTS.len() as u64) as usize]).collect()
}

#[test]
fn random_text_never_panics_and_pieces_reassemble_it() {
    let dir = testdata().join("vocab");
    let toks = [
        load_tokenizer(&dir.join("ggml-vocab-gpt-2.gguf")),
        load_tokenizer(&dir.join("ggml-vocab-llama-spm.gguf")),
        load_tokenizer(&default_model()),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let text = random_text(&mut rng);
        for tok in &toks {
            for parse_special in [false, true] {
                let ids = tok.encode(&text, true, parse_special);
                assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
                let pieces: Vec<u8> = ids.iter().flat_map(|&id| tok.token_piece_special(id).to_vec()).collect();
                let mut expected = Vec::new();
                if tok.add_bos() {
                    expected.extend_from_slice(tok.token_piece_special(tok.special_tokens().bos.unwrap()));
                }
                // SentencePiece adds a space in front of each text fragment.
                if !tok.add_space_prefix() {
                    expected.extend_from_slice(text.as_bytes());
                    assert_eq!(pieces, expected, "pieces of {text:?} (parse_special {parse_special})");
                }
            }
        }
        // Raw bytes, including invalid UTF-8, are accepted too.
        let mut bytes = text.into_bytes();
        if !bytes.is_empty() {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] = 0x80 | (rng.next() as u8);
        }
        for tok in &toks {
            let _ = tok.encode_bytes(&bytes, false, false);
        }
    }
    // Decoding arbitrary ids (including out-of-range ones) never panics.
    for tok in &toks {
        let ids: Vec<u32> = (0..2000).map(|_| rng.below(tok.vocab_size() as u64 + 10) as u32).collect();
        let _ = tok.decode(&ids, true);
        let _ = tok.detokenize(&ids, true, false);
    }
}
