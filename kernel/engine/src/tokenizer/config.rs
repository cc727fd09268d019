//! The vocabulary as plain data ([`VocabConfig`]), how it is read from GGUF
//! metadata, and llama.cpp's per-name settings: pre-tokenizer families and
//! the special-token spellings it recognizes.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{PreTokenizer, TokenizerError};
use crate::gguf::{Gguf, GgufError, MetaArray, MetaType};

/// A vocabulary as plain data: what [`Tokenizer::new`](super::Tokenizer::new) builds from. The GGUF
/// loader fills it from metadata; tests can fill it by hand. Optional fields
/// left `None` take llama.cpp's defaults for the vocabulary type.
#[derive(Clone, Debug, Default)]
pub struct VocabConfig<'a> {
    /// `tokenizer.ggml.model`: `gpt2` or `llama`.
    pub model: &'a str,
    /// `tokenizer.ggml.pre` (BPE only; `None` means llama.cpp's `default`).
    pub pre: Option<&'a str>,
    /// `tokenizer.ggml.tokens`, by id.
    pub tokens: Vec<&'a [u8]>,
    /// `tokenizer.ggml.scores` (SentencePiece merge priorities); empty = all 0.
    pub scores: Vec<f32>,
    /// `tokenizer.ggml.token_type`; empty = all normal.
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.merges`: `"left right"` strings in rank order.
    pub merges: Vec<&'a [u8]>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub sep: Option<u32>,
    pub pad: Option<u32>,
    pub mask: Option<u32>,
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
    pub add_space_prefix: Option<bool>,
    /// `tokenizer.chat_template` (Jinja source).
    pub chat_template: Option<&'a str>,
}

/// Pre-tokenizer names accepted in `tokenizer.ggml.pre` (BPE vocabularies).
pub const SUPPORTED_PRE_NAMES: &[&str] = &[
    "default", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
    "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "trillion", "granite-docling",
    "exaone4", "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "mellum2", "llama3",
    "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano", "dbrx", "smaug-bpe",
    "falcon", "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez",
];

/// How llama.cpp configures a BPE vocabulary for a `pre` name.
pub(super) struct PreSettings {
    pub pre: PreTokenizer,
    pub clean_spaces: bool,
    pub ignore_merges: bool,
    pub add_bos: bool,
}

pub(super) fn pre_settings(name: Option<&str>) -> Option<PreSettings> {
    let s = |pre, clean_spaces, ignore_merges, add_bos| Some(PreSettings { pre, clean_spaces, ignore_merges, add_bos });
    use PreTokenizer::*;
    match name? {
        "default" => s(Default, true, false, false),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de" | "a.x-4.0" | "mellum"
        | "modern-bert" | "jina-v1-en" | "jina-v2-code" | "roberta-bpe" | "mpt" | "olmo" | "jais" | "exaone4" => {
            s(Gpt2, true, false, false)
        }
        "trillion" | "granite-docling" => s(Gpt2, false, false, false),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => s(DigitsThenGpt2, true, false, false),
        "smollm" | "command-r" => s(DigitsThenGpt2, false, false, false),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2" | "jina-v5-nano" => {
            s(Llama3, true, true, true)
        }
        "dbrx" | "smaug-bpe" => s(Llama3, true, false, false),
        "falcon" => s(Falcon, true, false, false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" => s(Qwen2, false, false, false),
        "megrez" => s(Qwen2, true, false, false),
        _ => None,
    }
}

/// Token texts llama.cpp treats as end-of-turn, in the order tried.
pub(super) const EOT_NAMES: &[&str] = &[
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
    "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
];
/// Token texts that end generation (llama.cpp's EOG list).
pub(super) const EOG_NAMES: &[&str] = &[
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>",
    "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
];
/// Fill-in-the-middle tokens: marked control like llama.cpp; pad/repo/sep end generation.
pub(super) const FIM_NAMES: &[&[&str]] = &[
    &["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"],
    &["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"],
    &["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"],
];
pub(super) const FIM_EOG_NAMES: &[&[&str]] = &[
    &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
    &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
    &["<|file_sep|>"],
];

/// Reads the tokenizer metadata of a GGUF file.
pub(super) fn vocab_config_from_gguf<'a>(g: &Gguf<'a>) -> Result<VocabConfig<'a>, TokenizerError> {
    let bad = |key: &'static str, e: GgufError| TokenizerError::BadMetadata { key, reason: e.to_string() };
    let model = g
        .opt_str("tokenizer.ggml.model")
        .map_err(|e| bad("tokenizer.ggml.model", e))?
        .ok_or(TokenizerError::MissingKey { key: "tokenizer.ggml.model" })?;
    let pre = g.opt_str("tokenizer.ggml.pre").map_err(|e| bad("tokenizer.ggml.pre", e))?;

    let array = |key: &'static str, want: &[MetaType]| -> Result<Option<MetaArray<'a>>, TokenizerError> {
        match g.get(key) {
            None => Ok(None),
            Some(v) => {
                let a = v.as_array().filter(|a| want.contains(&a.elem_type())).ok_or_else(|| TokenizerError::BadMetadata {
                    key,
                    reason: alloc::format!("expected an array of {}", want[0].name()),
                })?;
                Ok(Some(a))
            }
        }
    };
    let tokens: Vec<&[u8]> = array("tokenizer.ggml.tokens", &[MetaType::String])?
        .ok_or(TokenizerError::MissingKey { key: "tokenizer.ggml.tokens" })?
        .strings()
        .into_iter()
        .flatten()
        .collect();
    let scores = match array("tokenizer.ggml.scores", &[MetaType::F32, MetaType::I32])? {
        Some(a) if a.elem_type() == MetaType::F32 => a.f32s().into_iter().flatten().collect(),
        Some(a) => a.i32s().into_iter().flatten().map(|v| v as f32).collect(),
        None => Vec::new(),
    };
    let token_types = match array("tokenizer.ggml.token_type", &[MetaType::I32])? {
        Some(a) => a.i32s().into_iter().flatten().collect(),
        None => Vec::new(),
    };
    let merges = match array("tokenizer.ggml.merges", &[MetaType::String])? {
        Some(a) => a.strings().into_iter().flatten().collect(),
        None if model == "gpt2" => return Err(TokenizerError::MissingKey { key: "tokenizer.ggml.merges" }),
        None => Vec::new(),
    };

    let id = |key: &'static str| -> Result<Option<u32>, TokenizerError> {
        match g.get(key) {
            None => Ok(None),
            Some(v) => v.as_u32().map(Some).ok_or_else(|| TokenizerError::BadMetadata {
                key,
                reason: String::from("expected a token id (unsigned integer)"),
            }),
        }
    };
    let flag = |key: &'static str| -> Result<Option<bool>, TokenizerError> {
        match g.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| TokenizerError::BadMetadata { key, reason: String::from("expected a bool") }),
        }
    };
    Ok(VocabConfig {
        model,
        pre,
        tokens,
        scores,
        token_types,
        merges,
        bos: id("tokenizer.ggml.bos_token_id")?,
        eos: id("tokenizer.ggml.eos_token_id")?,
        eot: id("tokenizer.ggml.eot_token_id")?,
        eom: id("tokenizer.ggml.eom_token_id")?,
        unk: id("tokenizer.ggml.unknown_token_id")?,
        // (sic: llama.cpp's key is spelled "seperator")
        sep: id("tokenizer.ggml.seperator_token_id")?,
        pad: id("tokenizer.ggml.padding_token_id")?,
        mask: id("tokenizer.ggml.mask_token_id")?,
        add_bos: flag("tokenizer.ggml.add_bos_token")?,
        add_eos: flag("tokenizer.ggml.add_eos_token")?,
        add_space_prefix: flag("tokenizer.ggml.add_space_prefix")?,
        chat_template: g.opt_str("tokenizer.chat_template").map_err(|e| bad("tokenizer.chat_template", e))?,
    })
}
