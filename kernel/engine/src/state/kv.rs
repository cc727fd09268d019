//! The KV cache's element types: how one head's key or value row of
//! `head_dim` floats is stored, and read back.
//!
//! Reading back is exact on every ISA: an F16 element widens to f32 without
//! rounding, and a Q8_0 element is `d · q` with `d` an f16 and `q` an
//! integer in `-128..=127`, a product that fits f32's 24-bit mantissa. The
//! attention arithmetic therefore sees the same f32 values whichever path
//! decoded them ([`crate::matmul::Kernels::decode_kv`]).

use core::fmt;

use crate::quant::activation::quantize_row_q8_0;
use crate::quant::{f16_to_f32, f32_to_f16, BlockQ8_0, QK};

/// How the KV cache stores keys and values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KvType {
    /// 4 bytes per element: the reference.
    F32,
    /// IEEE half precision, 2 bytes per element (llama.cpp's default).
    #[default]
    F16,
    /// ggml's Q8_0 blocks along each head's row: 34 bytes per 32 elements
    /// (an f16 scale and 32 signed bytes, quantized as ggml's x86 backend
    /// quantizes activations). Needs a head size that is a multiple of 32.
    Q8_0,
}

impl KvType {
    /// Every type, in the order `--kv-type` lists them.
    pub const ALL: [KvType; 3] = [KvType::F16, KvType::Q8_0, KvType::F32];

    /// Lower-case name (`f16`, `q8_0`, `f32`), as `--kv-type` and `kv_type=` take it.
    pub fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
        }
    }

    /// Parses [`KvType::name`] (case-insensitive).
    pub fn from_name(name: &str) -> Option<KvType> {
        KvType::ALL.iter().copied().find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// Bytes of one row of `head_dim` elements, or `None` if this type cannot
    /// hold such a row (Q8_0 with a head size not a multiple of 32).
    pub fn row_bytes(self, head_dim: usize) -> Option<usize> {
        match self {
            KvType::F32 => head_dim.checked_mul(4),
            KvType::F16 => head_dim.checked_mul(2),
            KvType::Q8_0 => head_dim.is_multiple_of(QK).then(|| head_dim / QK * BlockQ8_0::BYTES),
        }
    }

    /// Whether the K cache holds this type's keys transposed by chunks of
    /// [`super::ATTN_CHUNK`] positions (`[chunk][dim][position]` per head),
    /// so a query is scored against many positions with one vector
    /// operation per dimension: F16 and F32. Q8_0 keys stay in rows (its
    /// blocks run along a head's dimensions).
    pub fn transposed_keys(self) -> bool {
        matches!(self, KvType::F16 | KvType::F32)
    }

    /// Bytes of one element (F16, F32), `None` for the block type.
    pub fn elem_bytes(self) -> Option<usize> {
        match self {
            KvType::F32 => Some(4),
            KvType::F16 => Some(2),
            KvType::Q8_0 => None,
        }
    }

    /// Stores `row` (one head) into `out` (`row_bytes(row.len())` bytes).
    pub fn encode(self, row: &[f32], out: &mut [u8]) {
        match self {
            KvType::F32 => {
                for (v, o) in row.iter().zip(out.chunks_exact_mut(4)) {
                    o.copy_from_slice(&v.to_le_bytes());
                }
            }
            KvType::F16 => {
                for (v, o) in row.iter().zip(out.chunks_exact_mut(2)) {
                    o.copy_from_slice(&f32_to_f16(*v).to_le_bytes());
                }
            }
            KvType::Q8_0 => quantize_row_q8_0(row, out),
        }
    }

    /// Reads rows back: `out.len() / row_bytes` rows of `head_dim` floats
    /// from `src` (the portable definition every SIMD path reproduces).
    pub fn decode(self, src: &[u8], out: &mut [f32]) {
        match self {
            KvType::F32 => {
                for (o, b) in out.iter_mut().zip(src.chunks_exact(4)) {
                    *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            KvType::F16 => {
                for (o, b) in out.iter_mut().zip(src.chunks_exact(2)) {
                    *o = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
                }
            }
            KvType::Q8_0 => {
                for (o, b) in out.chunks_exact_mut(QK).zip(src.chunks_exact(BlockQ8_0::BYTES)) {
                    let d = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
                    for (v, &q) in o.iter_mut().zip(&b[2..]) {
                        *v = d * (q as i8) as f32;
                    }
                }
            }
        }
    }
}

impl fmt::Display for KvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
