//! Turning token text back into bytes, as llama.cpp's `token_to_piece` and
//! `llama_detokenize` do.

use alloc::vec::Vec;

use super::unicode::{cpt_to_byte, cpts_from_utf8, push_utf8};

/// `▁` → space.
pub(super) fn unescape_spaces(text: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with("▁".as_bytes()) {
            out.push(b' ');
            i += 3;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
}

/// GPT-2 byte-level text → bytes. A code point outside the byte alphabet is
/// reported the way llama.cpp's `llama_decode_text` does.
pub(super) fn decode_byte_level(text: &[u8], out: &mut Vec<u8>) {
    let mut utf8 = Vec::with_capacity(4);
    for c in cpts_from_utf8(text) {
        match cpt_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                utf8.clear();
                push_utf8(&mut utf8, c);
                out.extend_from_slice(b"[UNK_BYTE_0x");
                for &b in &utf8 {
                    out.extend_from_slice(alloc::format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text);
                out.push(b']');
            }
        }
    }
}

/// The byte of a `<0xXX>` token (llama.cpp reads the two hex digits at 3..5).
pub(super) fn parse_byte_token(text: &[u8]) -> Option<u8> {
    let hex = core::str::from_utf8(text.get(3..5)?).ok()?;
    u8::from_str_radix(hex, 16).ok()
}

/// llama.cpp's `clean_spaces` passes of `llama_detokenize`: drop the space
/// before `? ! . ,`, around a lone `'`, and before `'s 'm 're 've`.
pub(super) fn clean_up_spaces(text: &mut Vec<u8>) {
    // pass 1: " ?", " !", " .", " ,"
    let mut total = usize::from(!text.is_empty());
    for i in 1..text.len() {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
    // pass 2: " ' " → "'"
    let n = text.len();
    let mut total = usize::from(n > 0);
    let mut i = 1;
    while i < n {
        let x = text[i];
        if x == b'\'' && i + 1 < n && text[i - 1] == b' ' && text[i + 1] == b' ' {
            total -= 1; // drop the space before
            i += 1; // and skip the one after
            text[i] = 0;
        }
        text[total] = x;
        total += 1;
        i += 1;
    }
    text.truncate(total);
    // pass 3: " 's", " 'm", " 're", " 've"
    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < n {
            let x1 = text[i + 1];
            if x1 == b's' || x1 == b'm' {
                total -= 1;
            } else if i + 2 < n {
                let x2 = text[i + 2];
                if x2 == b'e' && (x1 == b'r' || x1 == b'v') {
                    total -= 1;
                }
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}
