//! llama.cpp's block layouts for the quantized types this engine computes with.
//!
//! Every quantized type here groups [`QK`] = 32 consecutive elements of a row
//! into one block with one or two half-precision scales (stored as raw `u16`
//! bits, little-endian, exactly as in a GGUF file). Blocks are packed without
//! padding, so a GGUF row of `n` elements is `n / 32` blocks back to back and
//! is generally not aligned: read blocks with [`BlockQ4_0::read`] and friends.

/// Elements per block for every quantized type here.
pub const QK: usize = 32;

/// 4-bit block, symmetric: `x = d * (q - 8)`, `q` in `0..16`.
///
/// `qs[j]` holds element `j` in its low nibble and element `j + 16` in its
/// high nibble (ggml's order). 18 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockQ4_0 {
    /// Scale, f16 bits.
    pub d: u16,
    /// Packed nibbles.
    pub qs: [u8; QK / 2],
}

/// 4-bit block with an offset: `x = d * q + m`, `q` in `0..16`. 20 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockQ4_1 {
    /// Scale, f16 bits.
    pub d: u16,
    /// Minimum (offset), f16 bits.
    pub m: u16,
    /// Packed nibbles, same order as [`BlockQ4_0::qs`].
    pub qs: [u8; QK / 2],
}

/// 8-bit block, symmetric: `x = d * q`. 34 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockQ8_0 {
    /// Scale, f16 bits.
    pub d: u16,
    /// Quants.
    pub qs: [i8; QK],
}

/// 8-bit block with the scaled sum of its quants, `s = d * sum(qs)` (the form
/// ggml quantizes activations to for Q4_1 weights). 36 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockQ8_1 {
    /// Scale, f16 bits.
    pub d: u16,
    /// `d * sum(qs)`, f16 bits.
    pub s: u16,
    /// Quants.
    pub qs: [i8; QK],
}

#[inline]
fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

impl BlockQ4_0 {
    /// Offset of the quants (after `d`).
    pub const QS_AT: usize = 2;
    /// Bytes of quants: two per byte.
    pub const QS_BYTES: usize = QK / 2;
    /// Size in a GGUF file (18).
    pub const BYTES: usize = Self::QS_AT + Self::QS_BYTES;

    /// Reads a block from the first [`Self::BYTES`] bytes of `b` (panics if shorter).
    pub fn read(b: &[u8]) -> Self {
        let mut qs = [0u8; QK / 2];
        qs.copy_from_slice(&b[Self::QS_AT..Self::BYTES]);
        Self { d: le16(b, 0), qs }
    }

    /// Writes the block to the first [`Self::BYTES`] bytes of `out`.
    pub fn write(&self, out: &mut [u8]) {
        out[0..2].copy_from_slice(&self.d.to_le_bytes());
        out[Self::QS_AT..Self::BYTES].copy_from_slice(&self.qs);
    }
}

impl BlockQ4_1 {
    /// Offset of the quants (after `d` and `m`).
    pub const QS_AT: usize = 4;
    /// Bytes of quants: two per byte.
    pub const QS_BYTES: usize = QK / 2;
    /// Size in a GGUF file (20).
    pub const BYTES: usize = Self::QS_AT + Self::QS_BYTES;

    /// Reads a block from the first [`Self::BYTES`] bytes of `b` (panics if shorter).
    pub fn read(b: &[u8]) -> Self {
        let mut qs = [0u8; QK / 2];
        qs.copy_from_slice(&b[Self::QS_AT..Self::BYTES]);
        Self {
            d: le16(b, 0),
            m: le16(b, 2),
            qs,
        }
    }

    /// Writes the block to the first [`Self::BYTES`] bytes of `out`.
    pub fn write(&self, out: &mut [u8]) {
        out[0..2].copy_from_slice(&self.d.to_le_bytes());
        out[2..4].copy_from_slice(&self.m.to_le_bytes());
        out[Self::QS_AT..Self::BYTES].copy_from_slice(&self.qs);
    }
}

impl BlockQ8_0 {
    /// Offset of the quants (after `d`).
    pub const QS_AT: usize = 2;
    /// Bytes of quants: one each.
    pub const QS_BYTES: usize = QK;
    /// Size in a GGUF file (34).
    pub const BYTES: usize = Self::QS_AT + Self::QS_BYTES;

    /// Reads a block from the first [`Self::BYTES`] bytes of `b` (panics if shorter).
    pub fn read(b: &[u8]) -> Self {
        let mut qs = [0i8; QK];
        for (q, &byte) in qs.iter_mut().zip(&b[Self::QS_AT..Self::BYTES]) {
            *q = byte as i8;
        }
        Self { d: le16(b, 0), qs }
    }

    /// Writes the block to the first [`Self::BYTES`] bytes of `out`.
    pub fn write(&self, out: &mut [u8]) {
        out[0..2].copy_from_slice(&self.d.to_le_bytes());
        for (byte, &q) in out[Self::QS_AT..Self::BYTES].iter_mut().zip(&self.qs) {
            *byte = q as u8;
        }
    }
}

impl BlockQ8_1 {
    /// Offset of the quants (after `d` and `s`).
    pub const QS_AT: usize = 4;
    /// Size in ggml's memory layout (36).
    pub const BYTES: usize = Self::QS_AT + QK;

    /// Reads a block from the first [`Self::BYTES`] bytes of `b` (panics if shorter).
    pub fn read(b: &[u8]) -> Self {
        let mut qs = [0i8; QK];
        for (q, &byte) in qs.iter_mut().zip(&b[Self::QS_AT..Self::BYTES]) {
            *q = byte as i8;
        }
        Self {
            d: le16(b, 0),
            s: le16(b, 2),
            qs,
        }
    }

    /// Writes the block to the first [`Self::BYTES`] bytes of `out`.
    pub fn write(&self, out: &mut [u8]) {
        out[0..2].copy_from_slice(&self.d.to_le_bytes());
        out[2..4].copy_from_slice(&self.s.to_le_bytes());
        for (byte, &q) in out[Self::QS_AT..Self::BYTES].iter_mut().zip(&self.qs) {
            *byte = q as u8;
        }
    }
}
