//! Tokenizers from GGUF metadata, matching llama.cpp's token ids exactly.
//!
//! Two vocabulary types (`tokenizer.ggml.model`):
//! - `gpt2`: byte-level BPE with merges (`tokenizer.ggml.merges`) after the
//!   pre-tokenizer named by `tokenizer.ggml.pre` (see [`PreTokenizer`]);
//! - `llama`: SentencePiece-style BPE by token scores, with byte fallback
//!   (`<0xXX>` tokens) and the leading-space rule.
//!
//! [`Tokenizer::encode`] follows llama.cpp's `llama_tokenize`: special tokens
//! written in the text are split out first (all of them with
//! `parse_special`; only user-defined ones without), then each text fragment is
//! tokenized, and with `add_special` the model's BOS/EOS rules apply.
//! [`Tokenizer::token_piece`] gives the bytes a token stands for, for streaming
//! output ([`Utf8Stream`] assembles them into valid UTF-8), and
//! [`Tokenizer::decode`] / [`Tokenizer::detokenize`] whole sequences.
//!
//! Instruct models carry a chat template; [`Tokenizer::chat_template`]
//! recognizes it ([`ChatTemplate`]) and [`Tokenizer::encode_chat`] renders and
//! encodes a conversation.
//!
//! Everything is built once at load into flat tables (one string arena, a hash
//! index, sorted merge ranks); encoding allocates only its output and scratch.

mod chat;
mod config;
mod decode;
mod merge;
mod pretokenize;
mod special;
mod stream;
mod table;
pub mod unicode;
mod unicode_tables;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

pub use chat::{ChatMessage, ChatTemplate, ChatTemplateError};
pub use config::{VocabConfig, SUPPORTED_PRE_NAMES};
pub use pretokenize::PreTokenizer;
pub use stream::Utf8Stream;

use crate::gguf::Gguf;
use config::{pre_settings, vocab_config_from_gguf, PreSettings, EOG_NAMES, EOT_NAMES, FIM_EOG_NAMES, FIM_NAMES};
use decode::{clean_up_spaces, decode_byte_level, parse_byte_token, unescape_spaces};
use merge::Symbol;
use special::Fragment;
use table::{MergeRanks, StrArena, StrIndex};
use unicode::{byte_to_cpt_table, cpts_from_utf8, push_utf8};

/// A token id: an index into the vocabulary.
pub type TokenId = u32;

/// The vocabulary type (`tokenizer.ggml.model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabKind {
    /// `gpt2`: byte-level BPE with merges.
    Bpe,
    /// `llama`: SentencePiece BPE by scores, with byte fallback.
    Spm,
}

/// Token attributes (llama.cpp's `llama_token_attr`), from
/// `tokenizer.ggml.token_type` plus llama.cpp's name-based fix-ups.
pub mod attr {
    pub const UNDEFINED: u8 = 1 << 0;
    pub const UNKNOWN: u8 = 1 << 1;
    pub const UNUSED: u8 = 1 << 2;
    pub const NORMAL: u8 = 1 << 3;
    /// Control tokens (`<|im_start|>`, `<s>`): matched in text only with
    /// `parse_special`, and printed only when asked to.
    pub const CONTROL: u8 = 1 << 4;
    /// User-defined tokens: always matched in text, always printed.
    pub const USER_DEFINED: u8 = 1 << 5;
    /// `<0xXX>` byte-fallback tokens.
    pub const BYTE: u8 = 1 << 6;

    /// The attribute of a GGUF token type id (1 normal, 2 unknown, 3 control,
    /// 4 user-defined, 5 unused, 6 byte, anything else undefined).
    pub fn from_token_type(ty: i32) -> u8 {
        match ty {
            1 => NORMAL,
            2 => UNKNOWN,
            3 => CONTROL,
            4 => USER_DEFINED,
            5 => UNUSED,
            6 => BYTE,
            _ => UNDEFINED,
        }
    }
}

/// The special token ids a model declares (or llama.cpp's defaults).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos: Option<TokenId>,
    pub eos: Option<TokenId>,
    /// End of turn (`<|im_end|>` for ChatML models).
    pub eot: Option<TokenId>,
    /// End of message (`<|eom_id|>`).
    pub eom: Option<TokenId>,
    pub unk: Option<TokenId>,
    pub sep: Option<TokenId>,
    pub pad: Option<TokenId>,
    pub mask: Option<TokenId>,
    /// The token `"\n"` encodes to.
    pub newline: Option<TokenId>,
}

/// Why a tokenizer could not be built (or a chat prompt rendered).
#[derive(Clone, Debug, PartialEq)]
pub enum TokenizerError {
    /// A required metadata key is absent.
    MissingKey { key: &'static str },
    /// A metadata value of the wrong type or an impossible value.
    BadMetadata { key: &'static str, reason: String },
    /// A `tokenizer.ggml.model` other than `gpt2` and `llama`.
    UnsupportedModel { model: String },
    /// A `tokenizer.ggml.pre` this engine has no pre-tokenizer for.
    UnsupportedPreTokenizer { pre: String },
    /// The same token text appears twice in the vocabulary.
    DuplicateToken { text: String, first: TokenId, second: TokenId },
    /// `add_bos`/`add_eos` is set but the model names no such token.
    MissingSpecialToken { what: &'static str },
    Chat(ChatTemplateError),
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingKey { key } => write!(f, "tokenizer: metadata key {key} is missing"),
            Self::BadMetadata { key, reason } => write!(f, "tokenizer: metadata key {key}: {reason}"),
            Self::UnsupportedModel { model } => {
                write!(f, "tokenizer: unsupported tokenizer model {model:?} (supported: \"gpt2\" byte-level BPE, \"llama\" SentencePiece)")
            }
            Self::UnsupportedPreTokenizer { pre } => write!(
                f,
                "tokenizer: unsupported pre-tokenizer {pre:?} (supported: {})",
                SUPPORTED_PRE_NAMES.join(", ")
            ),
            Self::DuplicateToken { text, first, second } => {
                write!(f, "tokenizer: duplicate token {text:?} in the vocabulary (ids {first} and {second})")
            }
            Self::MissingSpecialToken { what } => {
                write!(f, "tokenizer: the model asks to add a {what} token but does not define one")
            }
            Self::Chat(e) => write!(f, "tokenizer: {e}"),
        }
    }
}

impl core::error::Error for TokenizerError {}

impl From<ChatTemplateError> for TokenizerError {
    fn from(e: ChatTemplateError) -> Self {
        Self::Chat(e)
    }
}


const NONE: u32 = u32::MAX;

/// A loaded tokenizer. Immutable and `Sync`: share one between threads/cores.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    kind: VocabKind,
    pre: PreTokenizer,
    pre_name: String,
    n_vocab: u32,
    /// Token texts (ids `0..n_vocab`), then strings that only occur in merges.
    strings: StrArena,
    index: StrIndex,
    merges: MergeRanks,
    scores: Vec<f32>,
    attrs: Vec<u8>,
    /// What each token prints as, control tokens included (llama.cpp's
    /// piece cache, `special = true`).
    pieces: StrArena,
    /// Ids of control, user-defined and unknown tokens, longest text first.
    special_cache: Vec<TokenId>,
    /// Token whose text is exactly one raw byte (BPE fallback), or NONE.
    single_byte: [u32; 256],
    /// `<0xXX>` token of each byte, else the raw single-byte token (SPM fallback).
    byte_token: [u32; 256],
    /// GPT-2 byte → code point map.
    byte_cpt: [u32; 256],
    specials: SpecialTokens,
    eog: Vec<TokenId>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
    ignore_merges: bool,
    chat_template: Option<String>,
}

impl Tokenizer {
    /// Builds the tokenizer described by a model's GGUF metadata.
    pub fn from_gguf(gguf: &Gguf<'_>) -> Result<Self, TokenizerError> {
        Self::new(vocab_config_from_gguf(gguf)?)
    }

    /// Builds a tokenizer from in-memory vocabulary data.
    pub fn new(cfg: VocabConfig<'_>) -> Result<Self, TokenizerError> {
        let kind = match cfg.model {
            "gpt2" => VocabKind::Bpe,
            "llama" => VocabKind::Spm,
            other => return Err(TokenizerError::UnsupportedModel { model: other.to_string() }),
        };
        let n = cfg.tokens.len();
        if n == 0 || n >= NONE as usize {
            return Err(TokenizerError::BadMetadata { key: "tokenizer.ggml.tokens", reason: alloc::format!("{n} tokens") });
        }
        if !cfg.scores.is_empty() && cfg.scores.len() < n {
            return Err(TokenizerError::BadMetadata {
                key: "tokenizer.ggml.scores",
                reason: alloc::format!("{} scores for {n} tokens", cfg.scores.len()),
            });
        }
        if !cfg.token_types.is_empty() && cfg.token_types.len() < n {
            return Err(TokenizerError::BadMetadata {
                key: "tokenizer.ggml.token_type",
                reason: alloc::format!("{} token types for {n} tokens", cfg.token_types.len()),
            });
        }

        // Per-type defaults, as llama.cpp's llama_vocab::load sets them.
        let (settings, mut bos, mut eos, mut unk) = match kind {
            VocabKind::Spm => (
                PreSettings { pre: PreTokenizer::Default, clean_spaces: false, ignore_merges: false, add_bos: true },
                Some(1),
                Some(2),
                Some(0),
            ),
            VocabKind::Bpe => {
                let name = cfg.pre.unwrap_or("default");
                let settings = pre_settings(Some(name))
                    .ok_or_else(|| TokenizerError::UnsupportedPreTokenizer { pre: name.to_string() })?;
                (settings, Some(11), Some(11), None)
            }
        };
        let add_space_prefix = cfg.add_space_prefix.unwrap_or(kind == VocabKind::Spm);

        // Vocabulary strings and their index.
        let total: usize = cfg.tokens.iter().map(|t| t.len()).sum();
        let mut strings = StrArena::with_capacity(n, total);
        let mut index = StrIndex::with_capacity(n + cfg.merges.len() / 8);
        for (i, &text) in cfg.tokens.iter().enumerate() {
            let id = if text.is_empty() {
                // llama.cpp renames empty tokens so they stay distinct.
                strings.push_with(|b| b.extend_from_slice(alloc::format!("[EMPTY_{i}]").as_bytes()))
            } else {
                strings.push(text)
            };
            let resolved = index.insert(&strings, id);
            if resolved != id {
                return Err(TokenizerError::DuplicateToken {
                    text: String::from_utf8_lossy(strings.get(id)).into_owned(),
                    first: resolved,
                    second: id,
                });
            }
        }

        // Merge ranks over string ids (merge parts missing from the
        // vocabulary get ids past it, so every merge stays reachable).
        let mut pairs = Vec::with_capacity(cfg.merges.len());
        if kind == VocabKind::Bpe {
            for (rank, &m) in cfg.merges.iter().enumerate() {
                let Some(sp) = m.iter().skip(1).position(|&b| b == b' ').map(|p| p + 1) else {
                    continue; // no separator: llama.cpp records an unusable ("", "") pair
                };
                let mut part_id = |s: &[u8]| match index.find(&strings, s) {
                    Some(id) => id,
                    None => {
                        let id = strings.push(s);
                        index.insert(&strings, id)
                    }
                };
                let left = part_id(&m[..sp]);
                let right = part_id(&m[sp + 1..]);
                pairs.push((MergeRanks::key(left, right), rank as u32));
            }
        }
        let merges = MergeRanks::build(pairs);

        let scores = if cfg.scores.is_empty() { alloc::vec![0.0; n] } else { cfg.scores[..n].to_vec() };
        let mut attrs: Vec<u8> = if cfg.token_types.is_empty() {
            alloc::vec![attr::NORMAL; n]
        } else {
            cfg.token_types[..n].iter().map(|&t| attr::from_token_type(t)).collect()
        };

        // Special ids: defaults outside the vocabulary are dropped; declared
        // ids outside it are ignored (the default stays), as in llama.cpp.
        let in_vocab = |id: Option<u32>| id.filter(|&i| (i as usize) < n);
        let pick = |declared: Option<u32>, default: Option<u32>| in_vocab(declared).or(in_vocab(default));
        bos = pick(cfg.bos, bos);
        eos = pick(cfg.eos, eos);
        unk = pick(cfg.unk, unk);
        let mut specials = SpecialTokens {
            bos,
            eos,
            eot: in_vocab(cfg.eot),
            eom: in_vocab(cfg.eom),
            unk,
            sep: in_vocab(cfg.sep),
            pad: in_vocab(cfg.pad),
            mask: in_vocab(cfg.mask),
            newline: None,
        };
        let add_bos = cfg.add_bos.unwrap_or(settings.add_bos);
        let add_eos = cfg.add_eos.unwrap_or(false);
        if add_bos && specials.bos.is_none() {
            return Err(TokenizerError::MissingSpecialToken { what: "BOS" });
        }
        if add_eos && specials.eos.is_none() {
            return Err(TokenizerError::MissingSpecialToken { what: "EOS" });
        }

        // llama.cpp's name-based fix-ups: end-of-turn/generation and FIM
        // tokens become control tokens; EOT/EOM are found by name if unset.
        let lookup = |name: &str| index.find(&strings, name.as_bytes()).filter(|&id| id < n as u32);
        let mut mark_control = |id: u32| attrs[id as usize] |= attr::CONTROL;
        if specials.eot.is_none() {
            specials.eot = EOT_NAMES.iter().find_map(|name| lookup(name));
        }
        if let Some(id) = specials.eot {
            if EOT_NAMES.iter().any(|name| lookup(name) == Some(id)) {
                mark_control(id);
            }
        }
        if specials.eom.is_none() {
            specials.eom = lookup("<|eom_id|>");
            if let Some(id) = specials.eom {
                mark_control(id);
            }
        }
        let mut eog: Vec<TokenId> = Vec::new();
        for group in FIM_NAMES {
            if let Some(id) = group.iter().find_map(|name| lookup(name)) {
                mark_control(id);
            }
        }
        for group in FIM_EOG_NAMES {
            if let Some(id) = group.iter().find_map(|name| lookup(name)) {
                mark_control(id);
                eog.push(id);
            }
        }
        for name in EOG_NAMES {
            if let Some(id) = lookup(name) {
                mark_control(id);
                eog.push(id);
            }
        }
        for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(id) = lookup(name) {
                attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        eog.extend([specials.eos, specials.eot, specials.eom].into_iter().flatten());
        eog.sort_unstable();
        eog.dedup();
        for (id, a) in attrs.iter_mut().enumerate() {
            if *a & attr::CONTROL != 0 && contains(strings.get(id as u32), b"unused") {
                *a |= attr::UNUSED;
            }
        }

        // Special tokens to split out of text, longest first (ties by id).
        let mut special_cache: Vec<TokenId> = (0..n as u32)
            .filter(|&id| attrs[id as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0)
            .collect();
        special_cache.sort_by_key(|&id| core::cmp::Reverse(strings.get(id).len()));

        let mut single_byte = [NONE; 256];
        let mut byte_token = [NONE; 256];
        for b in 0..=255u8 {
            single_byte[b as usize] = lookup_vocab(&index, &strings, n, &[b]).unwrap_or(NONE);
            let hex = alloc::format!("<0x{b:02X}>");
            byte_token[b as usize] =
                lookup_vocab(&index, &strings, n, hex.as_bytes()).unwrap_or(single_byte[b as usize]);
        }

        let mut tok = Tokenizer {
            kind,
            pre: settings.pre,
            pre_name: cfg.pre.unwrap_or("default").to_string(),
            n_vocab: n as u32,
            strings,
            index,
            merges,
            scores,
            attrs,
            pieces: StrArena::new(),
            special_cache,
            single_byte,
            byte_token,
            byte_cpt: byte_to_cpt_table(),
            specials,
            eog,
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces: settings.clean_spaces,
            ignore_merges: settings.ignore_merges,
            chat_template: cfg.chat_template.map(|s| s.to_string()),
        };
        tok.pieces = tok.build_pieces();
        tok.specials.newline = match kind {
            VocabKind::Spm => Some(tok.byte_token[b'\n' as usize]).filter(|&t| t != NONE),
            VocabKind::Bpe => tok.encode("\n", false, false).first().copied(),
        };
        Ok(tok)
    }

    // ---- facts about the vocabulary ----

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.n_vocab as usize
    }

    /// Number of distinct BPE merges (0 for SentencePiece).
    pub fn merge_count(&self) -> usize {
        self.merges.len()
    }

    pub fn kind(&self) -> VocabKind {
        self.kind
    }

    /// The pre-tokenizer in use (BPE), and the `tokenizer.ggml.pre` name it came from.
    pub fn pre_tokenizer(&self) -> (PreTokenizer, &str) {
        (self.pre, &self.pre_name)
    }

    /// BOS, EOS, EOT, ... ids.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.specials
    }

    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether `encode(.., add_special = true, ..)` appends EOS.
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }

    /// Whether SentencePiece text gets a leading space (`add_space_prefix`).
    pub fn add_space_prefix(&self) -> bool {
        self.add_space_prefix
    }

    /// Whether generation should stop at `id` (EOS, EOT, `<|im_end|>`, ...).
    pub fn is_eog(&self, id: TokenId) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// Every end-of-generation token id, sorted.
    pub fn eog_ids(&self) -> &[TokenId] {
        &self.eog
    }

    /// The token's attribute bits ([`attr`]); 0 for an id outside the vocabulary.
    pub fn token_attr(&self, id: TokenId) -> u8 {
        self.attrs.get(id as usize).copied().unwrap_or(0)
    }

    /// Whether `id` is a control token (`<|im_start|>`, `<s>`, ...).
    pub fn is_control(&self, id: TokenId) -> bool {
        self.token_attr(id) & attr::CONTROL != 0
    }

    /// The token's vocabulary string as stored in the model (byte-encoded for
    /// GPT-2 BPE, `▁` for spaces in SentencePiece); empty for an unknown id.
    pub fn token_text(&self, id: TokenId) -> &[u8] {
        if id < self.n_vocab {
            self.strings.get(id)
        } else {
            &[]
        }
    }

    /// The token's score (SentencePiece priority; 0 for BPE vocabularies).
    pub fn token_score(&self, id: TokenId) -> f32 {
        self.scores.get(id as usize).copied().unwrap_or(0.0)
    }

    /// The id of the token spelled exactly `text` (vocabulary form).
    pub fn token_id(&self, text: &[u8]) -> Option<TokenId> {
        lookup_vocab(&self.index, &self.strings, self.n_vocab as usize, text)
    }

    /// Approximate heap bytes held by the tokenizer's tables.
    pub fn heap_bytes(&self) -> usize {
        self.strings.heap_bytes()
            + self.index.heap_bytes()
            + self.merges.heap_bytes()
            + self.pieces.heap_bytes()
            + self.scores.capacity() * 4
            + self.attrs.capacity()
            + self.special_cache.capacity() * 4
    }

    // ---- encoding ----

    /// Tokenizes `text` as llama.cpp's `llama_tokenize` does.
    ///
    /// - `add_special`: add BOS/EOS as the model's metadata asks
    ///   (`tokenizer.ggml.add_bos_token` / `add_eos_token`, else the
    ///   vocabulary type's default).
    /// - `parse_special`: text spelling a control token (`<|im_start|>`)
    ///   becomes that token; without it, only user-defined tokens are matched
    ///   and control-token spellings are tokenized as ordinary text.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<TokenId> {
        self.encode_bytes(text.as_bytes(), add_special, parse_special)
    }

    /// [`Self::encode`] for bytes that may not be valid UTF-8: malformed
    /// sequences are read as U+FFFD, one per bad byte, as llama.cpp does.
    pub fn encode_bytes(&self, text: &[u8], add_special: bool, parse_special: bool) -> Vec<TokenId> {
        let skip = if parse_special { 0 } else { attr::CONTROL | attr::UNKNOWN };
        let specials = self
            .special_cache
            .iter()
            .filter(|&&id| self.attrs[id as usize] & skip == 0)
            .map(|&id| (id, self.strings.get(id)));
        let fragments = special::partition(text, specials);

        let mut out = Vec::new();
        let mut symbols = Vec::new();
        match self.kind {
            VocabKind::Spm => {
                let mut prev_special = true; // the first fragment gets the space prefix
                if add_special && self.add_bos {
                    out.extend(self.specials.bos);
                }
                for frag in fragments {
                    match frag {
                        Fragment::Text { start, len } => {
                            let mut escaped = Vec::with_capacity(len + 3);
                            if self.add_space_prefix && prev_special {
                                escaped.extend_from_slice("▁".as_bytes());
                            }
                            for &b in &text[start..start + len] {
                                if b == b' ' {
                                    escaped.extend_from_slice("▁".as_bytes());
                                } else {
                                    escaped.push(b);
                                }
                            }
                            self.spm_fragment(&escaped, &mut symbols, &mut out);
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            VocabKind::Bpe => {
                if add_special && self.add_bos {
                    out.extend(self.specials.bos);
                }
                for frag in fragments {
                    match frag {
                        Fragment::Text { start, len } => self.bpe_fragment(&text[start..start + len], &mut symbols, &mut out),
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.specials.eos);
        }
        out
    }

    /// GPT-2 BPE: pre-tokenize, byte-encode each piece, merge by rank.
    fn bpe_fragment(&self, text: &[u8], symbols: &mut Vec<Symbol>, out: &mut Vec<TokenId>) {
        let cpts = cpts_from_utf8(text);
        let mut word = Vec::new();
        let mut utf8 = Vec::with_capacity(4);
        let mut start = 0;
        for len in self.pre.split(&cpts) {
            word.clear();
            for &c in &cpts[start..start + len] {
                utf8.clear();
                push_utf8(&mut utf8, c);
                for &b in &utf8 {
                    push_utf8(&mut word, self.byte_cpt[b as usize]);
                }
            }
            start += len;
            self.bpe_word(&word, symbols, out);
        }
    }

    fn bpe_word(&self, word: &[u8], symbols: &mut Vec<Symbol>, out: &mut Vec<TokenId>) {
        if self.ignore_merges {
            if let Some(id) = self.token_id(word) {
                out.push(id);
                return;
            }
        }
        let find = |s: &[u8]| self.index.find(&self.strings, s);
        merge::bpe_merge(word, symbols, |a, b| self.merges.rank(find(a)?, find(b)?));
        for s in symbols.iter().filter(|s| s.len > 0) {
            let piece = &word[s.start as usize..(s.start + s.len) as usize];
            match self.token_id(piece) {
                Some(id) => out.push(id),
                // Not a token: each byte that is itself a token (llama.cpp
                // looks up the raw bytes of the byte-encoded piece).
                None => out.extend(piece.iter().map(|&b| self.single_byte[b as usize]).filter(|&t| t != NONE)),
            }
        }
    }

    /// SentencePiece BPE over one escaped fragment, with byte fallback.
    fn spm_fragment(&self, text: &[u8], symbols: &mut Vec<Symbol>, out: &mut Vec<TokenId>) {
        merge::spm_merge(text, symbols, |s| self.token_id(s).map(|id| self.scores[id as usize]));
        for s in symbols.iter().filter(|s| s.len > 0) {
            let piece = &text[s.start as usize..(s.start + s.len) as usize];
            match self.token_id(piece) {
                Some(id) => out.push(id),
                None => {
                    for &b in piece {
                        let t = self.byte_token[b as usize];
                        match (t, self.specials.unk) {
                            (NONE, Some(unk)) => out.push(unk),
                            (NONE, None) => {}
                            (t, _) => out.push(t),
                        }
                    }
                }
            }
        }
    }

    // ---- chat ----

    /// The model's chat template source (`tokenizer.chat_template`), if any.
    pub fn chat_template_source(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The model's chat template, recognized; an error names a missing or
    /// unsupported template.
    pub fn chat_template(&self) -> Result<ChatTemplate, TokenizerError> {
        let src = self.chat_template.as_deref().ok_or(ChatTemplateError::Missing)?;
        Ok(ChatTemplate::detect(src)?)
    }

    /// How a prompt is framed for this model: its chat template, or, for a
    /// base model without one, [`ChatTemplate::Completion`]
    /// (`Question: …\nAnswer:`). An unsupported template is an error.
    pub fn prompt_template(&self) -> Result<ChatTemplate, TokenizerError> {
        match self.chat_template() {
            Err(TokenizerError::Chat(ChatTemplateError::Missing)) => Ok(ChatTemplate::Completion),
            other => other,
        }
    }

    /// Renders `messages` with [`Self::prompt_template`] and encodes the
    /// result with special tokens parsed and BOS/EOS added per the model.
    pub fn encode_chat(&self, messages: &[ChatMessage<'_>], add_generation_prompt: bool) -> Result<Vec<TokenId>, TokenizerError> {
        let prompt = self.prompt_template()?.render(messages, add_generation_prompt);
        Ok(self.encode(&prompt, true, true))
    }

    // ---- decoding ----

    /// The bytes token `id` contributes to generated text: control and
    /// unknown tokens give nothing (llama.cpp's `token_to_piece` with
    /// `special = false`). A multi-byte character may be split across
    /// tokens: feed pieces to a [`Utf8Stream`] to print them.
    pub fn token_piece(&self, id: TokenId) -> &[u8] {
        if self.token_attr(id) & (attr::CONTROL | attr::UNKNOWN) != 0 {
            return &[];
        }
        self.token_piece_special(id)
    }

    /// Like [`Self::token_piece`], but control and unknown tokens print as
    /// their text (`<|im_end|>`); empty for an id outside the vocabulary.
    pub fn token_piece_special(&self, id: TokenId) -> &[u8] {
        if id < self.n_vocab {
            self.pieces.get(id)
        } else {
            &[]
        }
    }

    /// The text of `ids` (llama.cpp's `llama_detokenize` with
    /// `remove_special = false`): control tokens are printed only with
    /// `render_special`.
    pub fn decode(&self, ids: &[TokenId], render_special: bool) -> Vec<u8> {
        self.detokenize(ids, false, render_special)
    }

    /// llama.cpp's `llama_detokenize`: with `remove_special`, a leading BOS
    /// and trailing EOS the tokenizer would add are dropped; with
    /// `unparse_special`, control tokens are printed as text. SentencePiece's
    /// leading space is removed, and for vocabularies that ask for it the
    /// clean-up of spaces before punctuation and contractions is applied.
    pub fn detokenize(&self, ids: &[TokenId], remove_special: bool, unparse_special: bool) -> Vec<u8> {
        let mut ids = ids;
        let mut remove_space = self.add_space_prefix;
        if remove_special && self.add_bos && ids.first().is_some_and(|&t| Some(t) == self.specials.bos) {
            remove_space = false;
            ids = &ids[1..];
        }
        if remove_special && self.add_eos && ids.last().is_some_and(|&t| Some(t) == self.specials.eos) {
            ids = &ids[..ids.len() - 1];
        }
        let mut text = Vec::new();
        for &id in ids {
            let mut piece = if unparse_special { self.token_piece_special(id) } else { self.token_piece(id) };
            if remove_space {
                piece = piece.strip_prefix(b" ").unwrap_or(piece);
            }
            remove_space = false;
            text.extend_from_slice(piece);
        }
        if self.clean_spaces {
            clean_up_spaces(&mut text);
        }
        text
    }

    /// What each token prints as with `special = true`, as llama.cpp's
    /// `token_to_piece` computes it.
    fn build_pieces(&self) -> StrArena {
        let mut pieces = StrArena::with_capacity(self.n_vocab as usize, self.strings.heap_bytes());
        for id in 0..self.n_vocab {
            let text = self.strings.get(id);
            let a = self.attrs[id as usize];
            pieces.push_with(|out| {
                if a & (attr::CONTROL | attr::UNKNOWN | attr::USER_DEFINED) != 0 {
                    out.extend_from_slice(text);
                } else if a & attr::NORMAL != 0 {
                    match self.kind {
                        VocabKind::Spm => unescape_spaces(text, out),
                        VocabKind::Bpe => decode_byte_level(text, out),
                    }
                } else if a & attr::BYTE != 0 {
                    out.extend(parse_byte_token(text));
                }
            });
        }
        pieces
    }
}

fn lookup_vocab(index: &StrIndex, strings: &StrArena, n_vocab: usize, text: &[u8]) -> Option<TokenId> {
    index.find(strings, text).filter(|&id| (id as usize) < n_vocab)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}


#[cfg(test)]
mod tests;
