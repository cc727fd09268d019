//! BPE pre-tokenizers: the regexes llama.cpp's `llama-vocab.cpp` names for each
//! `tokenizer.ggml.pre`, hand-written as scanners over code points.
//!
//! llama.cpp applies a model's regexes one after another: each splits every
//! piece the previous one produced into "matches" and the gaps between them.
//! The GPT-2 and LLaMA-3 regexes are scanned by hand in llama.cpp too
//! (`unicode_regex_split_custom_gpt2` / `_llama3`); these scanners follow them
//! step by step, including where they differ from a true regex engine, because
//! matching llama.cpp's token ids is the goal. The simple extra regexes
//! (`\p{N}`, `[\p{P}...]+`, `[0-9][0-9][0-9]`) are plain loops.

use alloc::vec::Vec;

use super::unicode::CptFlags;

/// The pre-tokenizer families supported, by the regex chain they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`.
    Gpt2,
    /// `\p{N}` (every digit alone), then GPT-2 (SmolLM, StarCoder, Refact, Command-R, ...).
    DigitsThenGpt2,
    /// The LLaMA-3 regex (`\p{N}{1,3}`, case-insensitive contractions, newline runs).
    Llama3,
    /// Qwen 2's regex: LLaMA 3's with `\p{N}` (every digit alone) for
    /// `\p{N}{1,3}` (llama.cpp's `unicode_regex_split_custom_qwen2`).
    Qwen2,
    /// llama.cpp's default for BPE vocabularies without a `pre` name:
    /// `[\p{P}\$\+<=>\^~\|]+`, GPT-2, `\p{N}+`, `[0-9][0-9][0-9]`.
    Default,
    /// Falcon: ``[\p{P}\$\+<=>\^~\|`]+``, GPT-2, `[0-9][0-9][0-9]`.
    Falcon,
}

impl PreTokenizer {
    /// Splits `cpts` into pieces; returns the length (in code points) of each
    /// piece, in order. The lengths sum to `cpts.len()`.
    pub fn split(self, cpts: &[u32]) -> Vec<usize> {
        let mut pieces = if cpts.is_empty() { Vec::new() } else { alloc::vec![cpts.len()] };
        let stages: &[Stage] = match self {
            Self::Gpt2 => &[Stage::Gpt2],
            Self::DigitsThenGpt2 => &[Stage::EachDigit, Stage::Gpt2],
            Self::Llama3 => &[Stage::Llama3 { max_digits: 3 }],
            Self::Qwen2 => &[Stage::Llama3 { max_digits: 1 }],
            Self::Default => &[Stage::PunctRun { backtick: false }, Stage::Gpt2, Stage::DigitRun, Stage::AsciiDigitTriples],
            Self::Falcon => &[Stage::PunctRun { backtick: true }, Stage::Gpt2, Stage::AsciiDigitTriples],
        };
        for stage in stages {
            pieces = split_stage(*stage, cpts, &pieces);
        }
        pieces
    }
}

#[derive(Clone, Copy)]
enum Stage {
    Gpt2,
    /// The LLaMA-3 scanner, digits grouped by up to `max_digits` (3; Qwen 2: 1).
    Llama3 { max_digits: usize },
    /// `\p{N}`: each number code point is a piece of its own.
    EachDigit,
    /// `\p{N}+`.
    DigitRun,
    /// `[\p{P}\$\+<=>\^~\|]+` (plus the backtick for Falcon).
    PunctRun { backtick: bool },
    /// `[0-9][0-9][0-9]`, leftmost non-overlapping.
    AsciiDigitTriples,
}

fn split_stage(stage: Stage, cpts: &[u32], pieces: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(pieces.len() * 2);
    let mut start = 0;
    for &len in pieces {
        let span = Span { cpts, ini: start, end: start + len };
        let mut sink = Sink { out: &mut out, prev_end: start };
        match stage {
            Stage::Gpt2 => gpt2(span, &mut sink),
            Stage::Llama3 { max_digits } => llama3(span, &mut sink, max_digits),
            Stage::EachDigit => matches(span, &mut sink, |s, p| s.flags(p).is_number().then_some(p + 1)),
            Stage::DigitRun => matches(span, &mut sink, |s, p| s.run_end(p, |f, _| f.is_number())),
            Stage::PunctRun { backtick } => matches(span, &mut sink, |s, p| {
                s.run_end(p, |f, c| {
                    f.is_punctuation() || matches!(c, 0x24 | 0x2B | 0x3C..=0x3E | 0x5E | 0x7C | 0x7E) || (backtick && c == 0x60)
                })
            }),
            Stage::AsciiDigitTriples => matches(span, &mut sink, |s, p| {
                let digit = |q: usize| matches!(s.cpt(q), Some(0x30..=0x39));
                (digit(p) && digit(p + 1) && digit(p + 2)).then_some(p + 3)
            }),
        }
        sink.finish(span.end);
        start += len;
    }
    out
}

/// One piece of the text being split: positions are absolute code point
/// indices; anything outside `[ini, end)` reads as "out of range".
#[derive(Clone, Copy)]
struct Span<'a> {
    cpts: &'a [u32],
    ini: usize,
    end: usize,
}

impl Span<'_> {
    fn cpt(&self, pos: usize) -> Option<u32> {
        (self.ini <= pos && pos < self.end).then(|| self.cpts[pos])
    }
    fn flags(&self, pos: usize) -> CptFlags {
        self.cpt(pos).map_or(CptFlags::OUT_OF_RANGE, CptFlags::of)
    }
    /// End of the run of code points from `pos` satisfying `pred`, or `None`
    /// when `pos` itself does not.
    fn run_end(&self, pos: usize, pred: impl Fn(CptFlags, u32) -> bool) -> Option<usize> {
        let mut p = pos;
        while let Some(c) = self.cpt(p) {
            if !pred(CptFlags::of(c), c) {
                break;
            }
            p += 1;
        }
        (p > pos).then_some(p)
    }
}

/// Collects piece lengths; `add(end)` closes the piece that started where the
/// previous one ended (empty pieces are dropped), like llama.cpp's `_add_token`.
struct Sink<'a> {
    out: &'a mut Vec<usize>,
    prev_end: usize,
}

impl Sink<'_> {
    fn add(&mut self, end: usize) -> usize {
        let len = end - self.prev_end;
        if len > 0 {
            self.out.push(len);
        }
        self.prev_end = end;
        len
    }
    fn finish(&mut self, end: usize) {
        self.add(end);
    }
}

/// A regex used with `regex_iterator`: every match is a piece, and so is every
/// gap between matches. `match_at(span, pos)` returns the match end if the
/// regex matches starting exactly at `pos`.
fn matches(span: Span<'_>, sink: &mut Sink<'_>, match_at: impl Fn(&Span<'_>, usize) -> Option<usize>) {
    let mut pos = span.ini;
    while pos < span.end {
        match match_at(&span, pos) {
            Some(end) => {
                sink.add(pos); // the gap before the match, if any
                sink.add(end);
                pos = end;
            }
            None => pos += 1,
        }
    }
}

/// `'s|'t|'re|'ve|'m|'ll|'d` at `pos` (case-sensitive unless `fold`); returns
/// the match length.
fn contraction(span: &Span<'_>, pos: usize, fold: bool) -> Option<usize> {
    if span.cpt(pos) != Some('\'' as u32) || pos + 1 >= span.end {
        return None;
    }
    let lower = |c: Option<u32>| {
        let c = c?;
        Some(if fold && (0x41..=0x5A).contains(&c) { c + 0x20 } else { c })
    };
    let next = lower(span.cpt(pos + 1))?;
    if matches!(char::from_u32(next), Some('s' | 't' | 'm' | 'd')) {
        return Some(2);
    }
    if pos + 2 < span.end {
        let next2 = lower(span.cpt(pos + 2))?;
        let pair = (char::from_u32(next), char::from_u32(next2));
        if matches!(pair, (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l'))) {
            return Some(3);
        }
    }
    None
}

/// Counts the whitespace code points from `pos`; also returns the end of the
/// last `\r`/`\n` among them (0 if none).
fn whitespace_run(span: &Span<'_>, pos: usize) -> (usize, usize) {
    let mut n = 0;
    let mut last_newline_end = 0;
    while span.flags(pos + n).is_whitespace() {
        if matches!(span.cpt(pos + n), Some(0x0A | 0x0D)) {
            last_newline_end = pos + n + 1;
        }
        n += 1;
    }
    (n, last_newline_end)
}

/// `[^\s\p{L}\p{N}]` for a position: a real code point of no other class.
fn is_other(f: CptFlags) -> bool {
    !(f.is_whitespace() || f.is_letter() || f.is_number()) && f.is_defined()
}

/// The GPT-2 regex, as llama.cpp's `unicode_regex_split_custom_gpt2` scans it.
fn gpt2(span: Span<'_>, sink: &mut Sink<'_>) {
    let mut pos = span.ini;
    while pos < span.end {
        let cpt = span.cpt(pos).unwrap_or(0);
        let flags = span.flags(pos);

        if let Some(n) = contraction(&span, pos, false) {
            pos += sink.add(pos + n);
            continue;
        }

        let space = cpt == ' ' as u32;
        let mut flags2 = if space { span.flags(pos + 1) } else { flags };
        // <space>?\p{L}+ , <space>?\p{N}+ , <space>?[^\s\p{L}\p{N}]+
        let class_pred: Option<fn(CptFlags) -> bool> = if flags2.is_letter() {
            Some(CptFlags::is_letter)
        } else if flags2.is_number() {
            Some(CptFlags::is_number)
        } else if is_other(flags2) {
            Some(is_other)
        } else {
            None
        };
        if let Some(pred) = class_pred {
            pos += space as usize;
            while pred(flags2) {
                pos += 1;
                flags2 = span.flags(pos);
            }
            sink.add(pos);
            continue;
        }

        let (n_ws, _) = whitespace_run(&span, pos);
        // \s+(?!\S): leave the last whitespace to prefix the next word.
        if n_ws > 1 && span.cpt(pos + n_ws).is_some() {
            pos += n_ws - 1;
            sink.add(pos);
            continue;
        }
        // \s+
        if n_ws > 0 {
            pos += n_ws;
            sink.add(pos);
            continue;
        }
        // no match: one code point alone
        pos += 1;
        sink.add(pos);
    }
}

/// The LLaMA-3 regex, as llama.cpp's `unicode_regex_split_custom_llama3` scans it.
fn llama3(span: Span<'_>, sink: &mut Sink<'_>, max_digits: usize) {
    let mut pos = span.ini;
    while pos < span.end {
        let cpt = span.cpt(pos).unwrap_or(0);
        let flags = span.flags(pos);

        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if let Some(n) = contraction(&span, pos, true) {
            pos += sink.add(pos + n);
            continue;
        }

        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(cpt == 0x0D || cpt == 0x0A || flags.is_number())
            && (flags.is_letter() || span.flags(pos + 1).is_letter())
        {
            pos += 1;
            while span.flags(pos).is_letter() {
                pos += 1;
            }
            sink.add(pos);
            continue;
        }

        // \p{N}{1,3} (Qwen 2: \p{N})
        if flags.is_number() {
            let mut ini = pos;
            while span.flags(pos).is_number() {
                pos += 1;
                if pos - ini >= max_digits {
                    sink.add(pos);
                    ini = pos;
                }
            }
            sink.add(pos);
            continue;
        }

        // <space>?[^\s\p{L}\p{N}]+[\r\n]*  (llama.cpp tests `flags`, not
        // `flags2`, for "is a real code point": kept as is)
        let space = cpt == ' ' as u32;
        let mut flags2 = if space { span.flags(pos + 1) } else { flags };
        if !(flags2.is_whitespace() || flags2.is_letter() || flags2.is_number()) && flags.is_defined() {
            pos += space as usize;
            while is_other(flags2) {
                pos += 1;
                flags2 = span.flags(pos);
            }
            while matches!(span.cpt(pos), Some(0x0A | 0x0D)) {
                pos += 1;
            }
            sink.add(pos);
            continue;
        }

        let (n_ws, last_newline_end) = whitespace_run(&span, pos);
        // \s*[\r\n]+
        if last_newline_end > 0 {
            pos = last_newline_end;
            sink.add(pos);
            continue;
        }
        // \s+(?!\S)
        if n_ws > 1 && span.cpt(pos + n_ws).is_some() {
            pos += n_ws - 1;
            sink.add(pos);
            continue;
        }
        // \s+
        if n_ws > 0 {
            pos += n_ws;
            sink.add(pos);
            continue;
        }
        pos += 1;
        sink.add(pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn pieces(pre: PreTokenizer, text: &str) -> Vec<String> {
        let cpts: Vec<u32> = text.chars().map(|c| c as u32).collect();
        let mut out = Vec::new();
        let mut start = 0;
        for len in pre.split(&cpts) {
            out.push(cpts[start..start + len].iter().map(|&c| char::from_u32(c).unwrap()).collect());
            start += len;
        }
        out
    }

    #[test]
    fn gpt2_splits_like_the_regex() {
        assert_eq!(pieces(PreTokenizer::Gpt2, "Hello, y'all! 123abc"), ["Hello", ",", " y", "'", "all", "!", " 123", "abc"]);
        assert_eq!(pieces(PreTokenizer::Gpt2, "I'm   here\n\n x"), ["I", "'m", "  ", " here", "\n\n", " x"]);
        assert_eq!(pieces(PreTokenizer::Gpt2, "   "), ["   "]);
        assert_eq!(pieces(PreTokenizer::Gpt2, ""), Vec::<String>::new());
    }

    #[test]
    fn digits_are_split_one_by_one_before_gpt2() {
        assert_eq!(pieces(PreTokenizer::DigitsThenGpt2, "a 33b ½"), ["a", " ", "3", "3", "b", " ", "½"]);
    }

    #[test]
    fn llama3_groups_digits_by_three_and_folds_contractions() {
        assert_eq!(pieces(PreTokenizer::Llama3, "1234567 I'M ok\n\n  x"), ["123", "456", "7", " I", "'M", " ok", "\n\n", " ", " x"]);
    }

    #[test]
    fn qwen2_splits_every_digit() {
        assert_eq!(pieces(PreTokenizer::Qwen2, "1234 I'M ok\n\n  x"), ["1", "2", "3", "4", " I", "'M", " ok", "\n\n", " ", " x"]);
    }

    #[test]
    fn default_chain_splits_punctuation_and_digit_triples() {
        assert_eq!(pieces(PreTokenizer::Default, "a+b 12345"), ["a", "+", "b", " ", "123", "45"]);
    }
}
