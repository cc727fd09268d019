//! Bounded line assembly for untrusted serial input (`interactive=1`).
//!
//! Bytes arrive one at a time; a line ends at `\n` or `\r` (a `\r\n` pair
//! ends one line, not two). A line longer than the buffer is dropped whole
//! and reported as [`Line::TooLong`] when it finally ends, so an overlong
//! paste can never be mistaken for a shorter prompt. Invalid UTF-8 is
//! reported as [`Line::InvalidUtf8`]. `0x04` (Ctrl-D) ends the session.

/// What one byte completed.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A complete line (without its terminator).
    Text(&'a str),
    /// A line of `len` bytes exceeded the limit and was discarded.
    TooLong { len: usize },
    /// A line that is not UTF-8, discarded.
    InvalidUtf8 { at: usize },
    /// End of input (Ctrl-D).
    End,
}

pub struct LineReader<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// Bytes of the current line, counted past the buffer.
    total: usize,
    last_was_cr: bool,
}

impl<const N: usize> Default for LineReader<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineReader<N> {
    pub const fn new() -> Self {
        LineReader { buf: [0; N], len: 0, total: 0, last_was_cr: false }
    }

    /// Feeds one byte; returns a line event when the byte ends a line.
    pub fn push(&mut self, byte: u8) -> Option<Line<'_>> {
        let was_cr = core::mem::replace(&mut self.last_was_cr, byte == b'\r');
        match byte {
            0x04 => {
                self.len = 0;
                self.total = 0;
                Some(Line::End)
            }
            b'\n' if was_cr => None,
            b'\n' | b'\r' => {
                let (len, total) = (self.len, self.total);
                self.len = 0;
                self.total = 0;
                if total > N {
                    return Some(Line::TooLong { len: total });
                }
                match core::str::from_utf8(&self.buf[..len]) {
                    Ok(s) => Some(Line::Text(s)),
                    Err(e) => Some(Line::InvalidUtf8 { at: e.valid_up_to() }),
                }
            }
            _ => {
                if self.len < N {
                    self.buf[self.len] = byte;
                    self.len += 1;
                }
                self.total = self.total.saturating_add(1);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn feed<const N: usize>(r: &mut LineReader<N>, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if let Some(l) = r.push(b) {
                out.push(std::format!("{l:?}"));
            }
        }
        out
    }

    #[test]
    fn lines_with_any_terminator() {
        let mut r = LineReader::<16>::new();
        assert_eq!(feed(&mut r, b"hello\nworld\r\nagain\r"), ["Text(\"hello\")", "Text(\"world\")", "Text(\"again\")"]);
        assert_eq!(feed(&mut r, b"\n\n"), ["Text(\"\")"]);
    }

    #[test]
    fn overlong_lines_are_dropped_whole_and_the_next_line_is_clean() {
        let mut r = LineReader::<4>::new();
        assert_eq!(feed(&mut r, b"abcdefgh\nok\n"), ["TooLong { len: 8 }", "Text(\"ok\")"]);
        // Exactly the limit is fine.
        assert_eq!(feed(&mut r, b"abcd\n"), ["Text(\"abcd\")"]);
    }

    #[test]
    fn invalid_utf8_and_end_of_input() {
        let mut r = LineReader::<16>::new();
        assert_eq!(feed(&mut r, b"ab\xff\xfe\n"), ["InvalidUtf8 { at: 2 }"]);
        assert_eq!(feed(&mut r, "café\n".as_bytes()), ["Text(\"café\")"]);
        assert_eq!(feed(&mut r, b"partial\x04"), ["End"]);
    }
}
