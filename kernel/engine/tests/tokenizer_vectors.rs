//! The tokenizers against llama.cpp's own outputs (test data in
//! `kernel/engine/testdata/`, found through `axiom_testkit`):
//! - `vocab/`: llama.cpp's tokenizer test vectors (`.inp` / `.out`) with
//!   their vocab-only GGUFs (SentencePiece `llama-spm`, BPE `gpt-2`), which
//!   their licences keep out of the repository: `tools/fetch-testdata.sh`
//!   fetches them into the cache (`axiom_testkit::fetched_testdata`);
//! - `smollm2/`: the same strings with the default model's vocabulary, and
//!   the goldens' prompt ids (special tokens parsed).
//!
//! Like llama.cpp's `test-tokenizer-0`: tests are separated by
//! `\n__ggml_vocab_test__\n`, tokenized with `add_special = false` and
//! `parse_special = false`, and must match exactly. The expected ids then
//! decode to what llama.cpp's `llama_detokenize` gives: the input text, except
//! where the vocabulary's documented clean-up changes it (asserted byte for
//! byte below).

mod common;

use std::path::Path;

use axiom_engine::gguf::{Gguf, GgufError};
use axiom_engine::tokenizer::{ChatMessage, Tokenizer, Utf8Stream};
use axiom_testkit::{default_model, fetched_testdata, read, testdata};
use common::Rng;

/// llama.cpp's SentencePiece test vocabulary (fetched: see the module docs).
fn llama_spm() -> std::path::PathBuf {
    fetched_testdata("vocab/ggml-vocab-llama-spm.gguf")
}

/// llama.cpp's GPT-2 test vocabulary (fetched: see the module docs).
fn gpt2() -> std::path::PathBuf {
    fetched_testdata("vocab/ggml-vocab-gpt-2.gguf")
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

/// The expected ids of every vector through decoding: llama.cpp's
/// `llama_detokenize` (no special tokens rendered) gives
/// `expected_text(input)`, and the pieces streamed through a [`Utf8Stream`]
/// (as `axiom run` prints tokens) are the pieces' bytes, in order. Returns
/// how many vectors decode to something other than their input.
fn check_decode(tok: &Tokenizer, inp: &Path, out: &Path, expected_text: impl Fn(&str) -> String) -> usize {
    let mut changed = 0;
    for (text, ids) in read_vectors(inp, out) {
        let expected = expected_text(&text);
        let decoded = tok.decode(&ids, false);
        assert_eq!(String::from_utf8_lossy(&decoded), expected, "decode of {text:?}");
        assert_eq!(decoded, expected.as_bytes(), "decode of {text:?} (bytes)");
        changed += usize::from(expected != text);

        let pieces: Vec<u8> = ids.iter().flat_map(|&id| tok.token_piece(id).to_vec()).collect();
        let mut streamed = String::new();
        let mut stream = Utf8Stream::new();
        for &id in &ids {
            stream.push(tok.token_piece(id), &mut streamed);
        }
        stream.finish(&mut streamed);
        assert_eq!(streamed.as_bytes(), pieces, "streamed pieces of {text:?}");
        // Byte-level BPE pieces are the input itself; SentencePiece's carry
        // the space it adds in front.
        let unprefixed = if tok.add_space_prefix() { pieces.strip_prefix(b" ").unwrap_or(&pieces) } else { &pieces[..] };
        assert_eq!(unprefixed, text.as_bytes(), "pieces of {text:?}");
    }
    changed
}

/// llama.cpp's detokenizer cleans up spaces for the `gpt-2` pre-tokenizer
/// (`clean_spaces`): it drops the space before `? ! . ,`, the spaces around
/// a lone `'`, and the space before `'s 'm 're 've` (lowercase only). In
/// the test vectors the only such sequence is `" ?"` after the emoji 😁 (in
/// two vectors); `" 'told"`, `" 'RE"`, `" 'M"`, `" 'D"` and `" ''''"` stay.
fn gpt2_detokenized(text: &str) -> String {
    text.replace("😁 ?", "😁?")
}

#[test]
fn llama_cpp_vectors_gpt2() {
    let tok = load_tokenizer(&gpt2());
    let (inp, out) = (fetched_testdata("vocab/ggml-vocab-gpt-2.gguf.inp"), fetched_testdata("vocab/ggml-vocab-gpt-2.gguf.out"));
    check_vectors(&tok, &inp, &out);
    assert_eq!(check_decode(&tok, &inp, &out, gpt2_detokenized), 2, "vectors whose spaces llama.cpp cleans up");
}

#[test]
fn llama_cpp_vectors_llama_spm() {
    let tok = load_tokenizer(&llama_spm());
    let (inp, out) = (fetched_testdata("vocab/ggml-vocab-llama-spm.gguf.inp"), fetched_testdata("vocab/ggml-vocab-llama-spm.gguf.out"));
    check_vectors(&tok, &inp, &out);
    // Decoding removes the space the encoder put in front: the input again.
    assert_eq!(check_decode(&tok, &inp, &out, str::to_string), 0);
}

#[test]
fn smollm2_vectors() {
    let dir = testdata("smollm2");
    let tok = load_tokenizer(&default_model());
    let (inp, out) = (dir.join("tokenize.inp"), dir.join("tokenize.out"));
    check_vectors(&tok, &inp, &out);
    // The `smollm` pre-tokenizer asks for no clean-up: the input, byte for byte.
    assert_eq!(check_decode(&tok, &inp, &out, str::to_string), 0);
}

/// Each clean-up rule of llama.cpp's detokenizer and the cases it leaves
/// alone, on the vocabulary that asks for it (`gpt-2`) and on two that do
/// not.
#[test]
fn detokenizer_cleans_spaces_only_where_llama_cpp_does() {
    const TEXT: &str = "Hello , world ! Is it ok ? Yes . It 's hers ' here , I 'm sure they 're right and we 've won ; don 't 'RE";
    const CLEANED: &str = "Hello, world! Is it ok? Yes. It's hers'here, I'm sure they're right and we've won ; don 't 'RE";
    let gpt2 = load_tokenizer(&gpt2());
    assert_eq!(String::from_utf8(gpt2.decode(&gpt2.encode(TEXT, false, false), false)).unwrap(), CLEANED);
    for tok in [load_tokenizer(&llama_spm()), load_tokenizer(&default_model())] {
        assert_eq!(String::from_utf8(tok.decode(&tok.encode(TEXT, false, false), false)).unwrap(), TEXT);
    }
}

#[test]
fn smollm2_golden_prompt_ids() {
    let tok = load_tokenizer(&default_model());
    let goldens: serde_json::Value = serde_json::from_slice(&read(&testdata("smollm2/goldens-q4_1.json"))).unwrap();
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

/// The ids of a golden case's prompt (`NAME` in `rel`).
fn golden_prompt_ids(rel: &str, name: &str) -> Vec<u32> {
    let goldens: serde_json::Value = serde_json::from_slice(&read(&testdata(rel))).unwrap();
    let case = goldens["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{rel} has no case {name}"));
    case["prompt_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
}

/// Llama 3 (`llama-bpe`) and Qwen 2 (`qwen2`) BPE vocabularies, from the
/// synthetic models that carry them: llama.cpp's vectors, and the chat
/// templates give the golden `chat-sky` prompts.
#[test]
fn llama3_and_qwen2_vectors_and_templates() {
    for name in axiom_testkit::SYNTHETIC_MODELS {
        let tok = load_tokenizer(&axiom_testkit::synthetic_model(name));
        let dir = testdata(&format!("synthetic/{name}"));
        let (inp, out) = (dir.join("tokenize.inp"), dir.join("tokenize.out"));
        check_vectors(&tok, &inp, &out);
        let expected_pre = if *name == "llama3" { "llama3" } else { "qwen2" };
        assert_eq!(format!("{:?}", tok.pre_tokenizer().0).to_lowercase(), expected_pre, "{name}");
        // llama-bpe asks for gpt-2's clean-up of spaces, qwen2 for none.
        if *name == "llama3" {
            assert_eq!(check_decode(&tok, &inp, &out, gpt2_detokenized), 2, "{name}");
        } else {
            assert_eq!(check_decode(&tok, &inp, &out, str::to_string), 0, "{name}");
        }
        let user = [ChatMessage { role: "user", content: "Why is the sky blue?" }];
        let ids = match tok.chat_template() {
            Ok(t) => {
                assert_eq!(t.name(), if *name == "llama3" { "llama3" } else { "chatml" }, "{name}");
                tok.encode_chat(&user, true).unwrap()
            }
            // A vocabulary file without a template: render the family's by name.
            Err(_) => {
                let t = if *name == "llama3" { "<|start_header_id|><|end_header_id|><|eot_id|>" } else { "<|im_start|><|im_end|>" };
                tok.encode(&axiom_engine::tokenizer::ChatTemplate::detect(t).unwrap().render(&user, true), true, true)
            }
        };
        // The golden prompt is the user turn alone; Qwen 2's template puts
        // its default system message ("You are a helpful assistant") first.
        let golden = golden_prompt_ids(&format!("synthetic/{name}/goldens-f32.json"), "chat-sky");
        assert!(ids.ends_with(&golden), "{name} chat-sky: {ids:?} does not end with {golden:?}");
        let head = String::from_utf8(tok.decode(&ids[..ids.len() - golden.len()], true)).unwrap();
        assert!(head.is_empty() || head == "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n", "{name}: {head:?}");
    }
}

/// Gemma 3's SentencePiece vocabulary (262,144 pieces, byte fallback, no
/// space prefix, BOS added) against llama.cpp's vectors; its base model has
/// no template: prompts get the completion framing of the `qa-sky` golden.
#[test]
fn gemma3_vectors_and_prompt_framing() {
    let tok = load_tokenizer(&axiom_testkit::cached_model(axiom_testkit::GEMMA3_MODEL));
    assert_eq!(tok.vocab_size(), 262_144);
    assert!(tok.add_bos() && !tok.add_space_prefix());
    let dir = testdata("gemma3-270m");
    let (inp, out) = (dir.join("tokenize.inp"), dir.join("tokenize.out"));
    check_vectors(&tok, &inp, &out);
    assert_eq!(check_decode(&tok, &inp, &out, str::to_string), 0);
    let rel = "gemma3-270m/goldens-q4_k_m.json";
    let user = [ChatMessage { role: "user", content: "Why is the sky blue?" }];
    assert_eq!(tok.prompt_template().unwrap().name(), "completion");
    assert_eq!(tok.encode_chat(&user, true).unwrap(), golden_prompt_ids(rel, "qa-sky"));
    let gemma = axiom_engine::tokenizer::ChatTemplate::Gemma.render(&user, true);
    assert_eq!(tok.encode(&gemma, true, true), golden_prompt_ids(rel, "chat-sky"));
    assert!(tok.is_eog(106) && tok.is_eog(1), "<end_of_turn> and EOS end generation");
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

/// The character that stands for byte `b` in a byte-level (GPT-2) BPE
/// vocabulary: printable Latin-1 bytes as themselves, the other 68 as
/// U+0100 onwards in byte order.
fn byte_level_char(b: u8) -> char {
    let printable = |c: u8| (b'!'..=b'~').contains(&c) || (0xA1..=0xAC).contains(&c) || c >= 0xAE;
    if printable(b) {
        char::from(b)
    } else {
        char::from_u32(0x100 + (0..b).filter(|&c| !printable(c)).count() as u32).unwrap()
    }
}

/// Which bytes a byte-level vocabulary has a symbol for.
fn expressible_bytes(tok: &Tokenizer) -> [bool; 256] {
    core::array::from_fn(|b| tok.token_id(byte_level_char(b as u8).encode_utf8(&mut [0; 4]).as_bytes()).is_some())
}

#[test]
fn byte_level_alphabets() {
    let missing = |tok: &Tokenizer| (0..=255u8).filter(|&b| !expressible_bytes(tok)[b as usize]).collect::<Vec<u8>>();
    // gpt-2 has all 256 byte symbols; SmolLM2's vocabulary lacks 21 (control
    // bytes and lead bytes that valid UTF-8 never or rarely uses), which
    // its tokenizer, like llama.cpp's, drops from the input.
    assert_eq!(missing(&load_tokenizer(&gpt2())), Vec::<u8>::new());
    assert_eq!(
        missing(&load_tokenizer(&default_model())),
        [0x04, 0x06, 0x13, 0x14, 0x16, 0x1d, 0xc0, 0xc1, 0xf1, 0xf2, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff]
    );
    assert_eq!(byte_level_char(b'A'), 'A');
    assert_eq!(byte_level_char(b' '), '\u{120}'); // GPT-2's 'Ġ'
    assert_eq!(byte_level_char(b'\n'), '\u{10A}'); // 'Ċ'
    assert_eq!(byte_level_char(0xAD), '\u{143}');
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
    let toks = [
        load_tokenizer(&gpt2()),
        load_tokenizer(&llama_spm()),
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
        // Raw bytes, including invalid UTF-8, are accepted too: every id is
        // in the vocabulary, and when the bytes are valid UTF-8 a byte-level
        // vocabulary gives them back, less the bytes it has no symbol for
        // (dropped, as llama.cpp does; llama.cpp reads bad bytes as U+FFFD).
        let mut bytes = text.into_bytes();
        if !bytes.is_empty() {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] = 0x80 | (rng.next() as u8);
        }
        for tok in &toks {
            let ids = tok.encode_bytes(&bytes, false, false);
            assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()), "ids of {bytes:?}");
            if !tok.add_space_prefix() && std::str::from_utf8(&bytes).is_ok() {
                let expressible = expressible_bytes(tok);
                let expected: Vec<u8> = bytes.iter().copied().filter(|&b| expressible[b as usize]).collect();
                let pieces: Vec<u8> = ids.iter().flat_map(|&id| tok.token_piece_special(id).to_vec()).collect();
                assert_eq!(pieces, expected, "pieces of {bytes:?}");
            }
        }
    }
    // Decoding arbitrary ids, out-of-range ones included (they print
    // nothing), never panics, and gives the pieces' bytes less only the
    // spaces the vocabulary's rules drop: SentencePiece's leading one, and
    // gpt-2's clean-up (which only ever removes spaces).
    let [gpt2, spm, smollm2] = &toks;
    for tok in &toks {
        let ids: Vec<u32> = (0..2000).map(|_| rng.below(tok.vocab_size() as u64 + 10) as u32).collect();
        let known = || ids.iter().filter(|&&id| (id as usize) < tok.vocab_size());
        let rendered: Vec<u8> = known().flat_map(|&id| tok.token_piece_special(id).to_vec()).collect();
        let plain: Vec<u8> = known().flat_map(|&id| tok.token_piece(id).to_vec()).collect();
        let (decoded, detokenized) = (tok.decode(&ids, true), tok.detokenize(&ids, true, false));
        let without_spaces = |b: &[u8]| b.iter().copied().filter(|&c| c != b' ').collect::<Vec<u8>>();
        assert_eq!(without_spaces(&decoded), without_spaces(&rendered));
        assert_eq!(without_spaces(&detokenized), without_spaces(&plain));
        if std::ptr::eq(tok, smollm2) {
            assert_eq!(decoded, rendered);
            assert_eq!(detokenized, plain);
        } else if std::ptr::eq(tok, spm) {
            let first = tok.token_piece_special(ids[0]);
            let stripped = usize::from(first.starts_with(b" "));
            assert_eq!(decoded, rendered[stripped..]);
        } else {
            assert!(std::ptr::eq(tok, gpt2));
            assert!(decoded.len() <= rendered.len() && detokenized.len() <= plain.len());
        }
    }
}
