//! Bounds-checked little-endian reads over a file prefix.
//!
//! Every read is checked twice: against the *file size* (past it: the file is
//! truncated or corrupt) and against the *bytes in memory* (past them, but inside
//! the file: the caller must read a longer prefix, [`GgufError::NeedMore`]).

use super::GgufError;

pub(super) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    file_size: u64,
}

impl<'a> Cursor<'a> {
    /// `buf` is the start of a file of `file_size` bytes (`buf.len() <= file_size`).
    pub fn new(buf: &'a [u8], file_size: u64) -> Self {
        Self { buf, pos: 0, file_size }
    }

    pub fn pos(&self) -> u64 {
        self.pos as u64
    }

    /// Bytes of the file (not only of the prefix) after the cursor.
    pub fn file_remaining(&self) -> u64 {
        self.file_size.saturating_sub(self.pos as u64)
    }

    /// The error for an item of `needed` bytes at the cursor that is not
    /// entirely available.
    pub fn short(&self, what: &'static str, needed: u64) -> GgufError {
        let at = self.pos as u64;
        match at.checked_add(needed) {
            Some(end) if end <= self.file_size => GgufError::NeedMore {
                // Ask for at least the item, and grow geometrically so a
                // caller retrying with the hint converges in a few reads.
                bytes: end.max((self.buf.len() as u64).saturating_mul(2)).min(self.file_size),
            },
            _ => GgufError::Truncated { what, at, needed, file_size: self.file_size },
        }
    }

    pub fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], GgufError> {
        let available = (self.buf.len() - self.pos) as u64;
        if n > available {
            return Err(self.short(what, n));
        }
        let n = n as usize; // n <= available, which fits in usize
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], GgufError> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A GGUF string: u64 length, then that many bytes.
    pub fn string(&mut self, what: &'static str) -> Result<&'a [u8], GgufError> {
        let len = self.u64(what)?;
        self.take(len, what)
    }

    /// A GGUF string that must be UTF-8 (keys, tensor names).
    pub fn utf8(&mut self, what: &'static str) -> Result<&'a str, GgufError> {
        let at = self.pos as u64 + 8;
        let bytes = self.string(what)?;
        core::str::from_utf8(bytes).map_err(|_| GgufError::InvalidUtf8 { what, at })
    }
}

impl<'a> Cursor<'a> {
    /// The bytes read since position `start` (an earlier [`Self::pos`]).
    pub fn since(&self, start: u64) -> &'a [u8] {
        &self.buf[start as usize..self.pos]
    }
}
