//! Unit tests on small hand-made vocabularies. The llama.cpp test vectors and
//! the real model's vocabulary are exercised in `tests/tokenizer_vectors.rs`.

use alloc::vec;
use alloc::vec::Vec;

use super::*;

/// A byte-level BPE vocabulary: all 256 byte symbols, a few merges, and the
/// ChatML control tokens.
fn bpe_vocab() -> Tokenizer {
    let table = byte_to_cpt_table();
    let mut owned: Vec<Vec<u8>> = Vec::new();
    for b in 0..=255u8 {
        let mut s = Vec::new();
        push_utf8(&mut s, table[b as usize]);
        owned.push(s);
    }
    for t in ["he", "ll", "hell", "hello", "Ġw", "Ġwor", "Ġworld", "<|im_start|>", "<|im_end|>", "<x>"] {
        owned.push(t.as_bytes().to_vec());
    }
    let merges: Vec<&[u8]> = vec![b"h e", b"l l", b"he ll", b"hell o", "Ġ w".as_bytes(), "Ġw or".as_bytes(), b"o r", "Ġwor ld".as_bytes(), b"l d"];
    let mut types = vec![1; owned.len()];
    let n = owned.len();
    types[n - 3] = 3; // <|im_start|> control
    types[n - 2] = 3; // <|im_end|> control
    types[n - 1] = 4; // <x> user-defined
    // "or" and "ld" are merge results missing from the vocabulary on purpose.
    let cfg = VocabConfig {
        model: "gpt2",
        pre: Some("gpt-2"),
        tokens: owned.iter().map(|v| v.as_slice()).collect(),
        token_types: types,
        merges,
        bos: Some(n as u32 - 3),
        eos: Some(n as u32 - 2),
        add_bos: Some(true),
        ..Default::default()
    };
    Tokenizer::new(cfg).unwrap()
}

fn id(t: &Tokenizer, s: &str) -> u32 {
    t.token_id(s.as_bytes()).unwrap()
}

#[test]
fn bpe_merges_and_falls_back_to_bytes() {
    let t = bpe_vocab();
    assert_eq!(t.encode("hello world", false, false), [id(&t, "hello"), id(&t, "Ġworld")]);
    // "Ġwo" + "r": "or" exists only as a merge; "Ġwor" is a token.
    assert_eq!(t.encode(" wor", false, false), [id(&t, "Ġwor")]);
    // Unmerged characters map to their byte tokens.
    assert_eq!(t.encode("é", false, false), [0xC3, 0xA9].map(|b| id_of_byte(&t, b)));
    assert_eq!(t.decode(&t.encode("hello world é!", false, false), false), b"hello world \xc3\xa9!");
}

fn id_of_byte(t: &Tokenizer, b: u8) -> u32 {
    let mut s = Vec::new();
    push_utf8(&mut s, byte_to_cpt_table()[b as usize]);
    t.token_id(&s).unwrap()
}

#[test]
fn special_tokens_parse_only_when_asked_but_user_defined_always() {
    let t = bpe_vocab();
    let start = id(&t, "<|im_start|>");
    let x = id(&t, "<x>");
    let parsed = t.encode("<|im_start|>hello<x>", false, true);
    assert_eq!(parsed, [start, id(&t, "hello"), x]);
    let unparsed = t.encode("<|im_start|>hello<x>", false, false);
    assert!(!unparsed.contains(&start));
    assert_eq!(*unparsed.last().unwrap(), x, "user-defined tokens are matched even without parse_special");
    // add_special: BOS from metadata here; no EOS (add_eos unset).
    assert_eq!(t.encode("hello", true, false), [start, id(&t, "hello")]);
}

#[test]
fn control_pieces_are_silent_unless_rendered() {
    let t = bpe_vocab();
    let end = id(&t, "<|im_end|>");
    assert_eq!(t.token_piece(end), b"");
    assert_eq!(t.token_piece_special(end), b"<|im_end|>");
    assert_eq!(t.token_piece(id(&t, "Ġworld")), b" world");
    assert!(t.is_eog(end));
    assert_eq!(t.special_tokens().eot, Some(end));
    assert_eq!(t.decode(&[id(&t, "hello"), end], true), b"hello<|im_end|>");
    assert_eq!(t.token_piece(u32::MAX), b"");
}

/// A SentencePiece vocabulary in the llama layout: <unk>, <s>, </s>, 256 byte
/// tokens, then pieces with scores.
fn spm_vocab() -> Tokenizer {
    let mut owned: Vec<Vec<u8>> = vec![b"<unk>".to_vec(), b"<s>".to_vec(), b"</s>".to_vec()];
    let mut types = vec![2, 3, 3];
    let mut scores = vec![0.0, 0.0, 0.0];
    for b in 0..=255u8 {
        owned.push(alloc::format!("<0x{b:02X}>").into_bytes());
        types.push(6);
        scores.push(0.0);
    }
    for (piece, score) in [("▁", -1.0), ("▁h", -2.0), ("el", -3.0), ("lo", -4.0), ("▁hel", -2.5), ("▁hello", -1.5), ("h", -5.0), ("e", -5.0), ("l", -5.0), ("o", -5.0)] {
        owned.push(piece.as_bytes().to_vec());
        types.push(1);
        scores.push(score);
    }
    let cfg = VocabConfig {
        model: "llama",
        tokens: owned.iter().map(|v| v.as_slice()).collect(),
        token_types: types,
        scores,
        ..Default::default()
    };
    Tokenizer::new(cfg).unwrap()
}

#[test]
fn spm_adds_space_prefix_bos_and_byte_fallback() {
    let t = spm_vocab();
    assert!(t.add_bos() && t.add_space_prefix());
    let hello = id(&t, "▁hello");
    assert_eq!(t.encode("hello", false, false), [hello]);
    assert_eq!(t.encode("hello", true, false), [1, hello]);
    // 'é' has no piece: its two UTF-8 bytes fall back to <0xC3> <0xA9>.
    assert_eq!(t.encode("é", false, false), [id(&t, "▁"), 3 + 0xC3, 3 + 0xA9]);
    // The leading space is removed again when decoding.
    assert_eq!(t.decode(&t.encode("hello é", false, false), false), "hello é".as_bytes());
    // A control token in the text (parse_special) resets the space prefix.
    assert_eq!(t.encode("<s>hello", false, true), [1, hello]);
    assert_eq!(t.special_tokens().newline, Some(3 + 0x0A));
}

#[test]
fn detokenize_cleans_spaces_like_llama_cpp() {
    let mut text = b"Hello , world ! It 's a ' b ' test .".to_vec();
    clean_up_spaces(&mut text);
    assert_eq!(text, b"Hello, world! It's a'b'test.");
}

#[test]
fn configuration_errors_are_clear() {
    let tokens: Vec<&[u8]> = vec![b"a", b"b"];
    let err = Tokenizer::new(VocabConfig { model: "bert", tokens: tokens.clone(), ..Default::default() }).unwrap_err();
    assert!(alloc::format!("{err}").contains("unsupported tokenizer model"));
    let err = Tokenizer::new(VocabConfig { model: "gpt2", pre: Some("qwen9"), tokens: tokens.clone(), ..Default::default() })
        .unwrap_err();
    assert!(alloc::format!("{err}").contains("unsupported pre-tokenizer \"qwen9\""));
    let err = Tokenizer::new(VocabConfig { model: "gpt2", tokens: vec![b"a", b"a"], ..Default::default() }).unwrap_err();
    assert!(matches!(err, TokenizerError::DuplicateToken { first: 0, second: 1, .. }));
    let err = Tokenizer::new(VocabConfig { model: "gpt2", tokens, add_bos: Some(true), ..Default::default() }).unwrap_err();
    assert_eq!(err, TokenizerError::MissingSpecialToken { what: "BOS" });
    let t = bpe_vocab();
    assert_eq!(t.chat_template().unwrap_err(), TokenizerError::Chat(ChatTemplateError::Missing));
    // Without a template, prompts get the completion framing.
    assert_eq!(t.prompt_template().unwrap(), crate::tokenizer::ChatTemplate::Completion);
}
