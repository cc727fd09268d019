//! Turning a stream of token pieces into text as generation proceeds.
//!
//! A byte-level BPE token may end in the middle of a UTF-8 sequence (an emoji
//! is often three or four tokens), so pieces cannot be printed one by one as
//! strings. [`Utf8Stream`] holds back an incomplete trailing sequence until the
//! next piece completes it, and replaces bytes that can never form valid UTF-8
//! with U+FFFD, so every chunk it returns is valid text.

use alloc::string::String;

/// Incremental UTF-8 assembly of token pieces. Allocation-free apart from the
/// caller's output `String`.
#[derive(Clone, Debug, Default)]
pub struct Utf8Stream {
    pending: [u8; 4],
    pending_len: usize,
}

impl Utf8Stream {
    pub const fn new() -> Self {
        Self { pending: [0; 4], pending_len: 0 }
    }

    /// Appends the text that `bytes` completes to `out`. An incomplete UTF-8
    /// sequence at the end is kept for the next call.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut String) {
        // First finish a sequence left over from the previous piece.
        while self.pending_len > 0 && !bytes.is_empty() {
            self.pending[self.pending_len] = bytes[0];
            self.pending_len += 1;
            bytes = &bytes[1..];
            match core::str::from_utf8(&self.pending[..self.pending_len]) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending_len = 0;
                }
                Err(e) if e.error_len().is_some() => {
                    // The held bytes can never be valid: emit U+FFFD for the
                    // bad prefix and re-feed whatever follows it.
                    let bad = e.error_len().unwrap_or(1) + e.valid_up_to();
                    let held = self.pending;
                    let held_len = self.pending_len;
                    self.pending_len = 0;
                    out.push_str(core::str::from_utf8(&held[..e.valid_up_to()]).unwrap_or(""));
                    out.push('\u{FFFD}');
                    let mut rest = String::new();
                    self.push(&held[bad..held_len], &mut rest);
                    out.push_str(&rest);
                }
                Err(_) => {} // still incomplete: take another byte
            }
        }
        // Then the piece's own bytes.
        loop {
            match core::str::from_utf8(bytes) {
                Ok(s) => {
                    out.push_str(s);
                    return;
                }
                Err(e) => {
                    let (good, rest) = bytes.split_at(e.valid_up_to());
                    out.push_str(core::str::from_utf8(good).unwrap_or(""));
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            bytes = &rest[n..];
                        }
                        None => {
                            // Incomplete sequence at the end (at most 3 bytes).
                            self.pending[..rest.len()].copy_from_slice(rest);
                            self.pending_len = rest.len();
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Ends the stream: a held incomplete sequence becomes U+FFFD.
    pub fn finish(&mut self, out: &mut String) {
        if self.pending_len > 0 {
            out.push('\u{FFFD}');
            self.pending_len = 0;
        }
    }

    /// Whether bytes of an unfinished character are being held back.
    pub fn has_pending(&self) -> bool {
        self.pending_len > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(pieces: &[&[u8]]) -> (alloc::vec::Vec<String>, String) {
        let mut s = Utf8Stream::new();
        let mut chunks = alloc::vec::Vec::new();
        for p in pieces {
            let mut out = String::new();
            s.push(p, &mut out);
            chunks.push(out);
        }
        let mut tail = String::new();
        s.finish(&mut tail);
        (chunks, tail)
    }

    #[test]
    fn holds_back_split_characters() {
        let rocket = "🚀".as_bytes(); // F0 9F 9A 80
        let (chunks, tail) = feed(&[b"go ", &rocket[..1], &rocket[1..3], &rocket[3..], b"!"]);
        assert_eq!(chunks, ["go ", "", "", "🚀", "!"]);
        assert_eq!(tail, "");
    }

    #[test]
    fn replaces_invalid_bytes() {
        let (chunks, tail) = feed(&[b"a\xffb", b"\xe2\x82", b"x"]);
        assert_eq!(chunks, ["a\u{FFFD}b", "", "\u{FFFD}x"]);
        assert_eq!(tail, "");
        let (_, tail) = feed(&[b"\xf0\x9f"]);
        assert_eq!(tail, "\u{FFFD}");
    }
}
