//! Typed views of weight bytes, built from a layout and an extent's bytes.

use super::layout::{GlobalsLayout, LayerLayout, TensorRef};
use crate::gguf::GgufError;
use crate::matmul::WeightMatrix;

/// An f32 vector (norm weight, bias) read straight from the file bytes
/// (little-endian, no alignment needed).
#[derive(Clone, Copy, Debug)]
pub struct F32Vector<'a> {
    bytes: &'a [u8],
}

impl<'a> F32Vector<'a> {
    pub fn len(&self) -> usize {
        self.bytes.len() / 4
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        self.bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// Elements `range` (for a head's slice of a bias).
    pub fn slice(&self, start: usize, end: usize) -> F32Vector<'a> {
        F32Vector { bytes: &self.bytes[start * 4..end * 4] }
    }
}

fn matrix<'a>(t: &TensorRef, bytes: &'a [u8]) -> WeightMatrix<'a> {
    WeightMatrix { ty: t.ty, rows: t.rows, cols: t.cols, data: &bytes[t.range()] }
}

fn vector<'a>(t: &TensorRef, bytes: &'a [u8]) -> F32Vector<'a> {
    F32Vector { bytes: &bytes[t.range()] }
}

fn check_len(what: &'static str, extent: &core::ops::Range<u64>, bytes: &[u8]) -> Result<(), GgufError> {
    let expected = extent.end - extent.start;
    if bytes.len() as u64 != expected {
        return Err(GgufError::ExtentMismatch { what, expected, found: bytes.len() as u64 });
    }
    Ok(())
}

/// The weights of one transformer block.
#[derive(Clone, Copy, Debug)]
pub struct LayerWeights<'a> {
    pub attn_norm: F32Vector<'a>,
    pub wq: WeightMatrix<'a>,
    pub wk: WeightMatrix<'a>,
    pub wv: WeightMatrix<'a>,
    pub wo: WeightMatrix<'a>,
    pub bq: Option<F32Vector<'a>>,
    pub bk: Option<F32Vector<'a>>,
    pub bv: Option<F32Vector<'a>>,
    pub ffn_norm: F32Vector<'a>,
    pub w_gate: WeightMatrix<'a>,
    pub w_up: WeightMatrix<'a>,
    pub w_down: WeightMatrix<'a>,
}

impl<'a> LayerWeights<'a> {
    /// Views of a layer's tensors inside `bytes`, the layer's extent
    /// (wherever it lives: mapped file, weight slot, resident copy).
    pub fn from_extent(layout: &LayerLayout, bytes: &'a [u8]) -> Result<Self, GgufError> {
        check_len("layer extent", &layout.extent, bytes)?;
        Ok(LayerWeights {
            attn_norm: vector(&layout.attn_norm, bytes),
            wq: matrix(&layout.wq, bytes),
            wk: matrix(&layout.wk, bytes),
            wv: matrix(&layout.wv, bytes),
            wo: matrix(&layout.wo, bytes),
            bq: layout.bq.as_ref().map(|t| vector(t, bytes)),
            bk: layout.bk.as_ref().map(|t| vector(t, bytes)),
            bv: layout.bv.as_ref().map(|t| vector(t, bytes)),
            ffn_norm: vector(&layout.ffn_norm, bytes),
            w_gate: matrix(&layout.w_gate, bytes),
            w_up: matrix(&layout.w_up, bytes),
            w_down: matrix(&layout.w_down, bytes),
        })
    }
}

/// The weights used outside the blocks.
#[derive(Clone, Copy, Debug)]
pub struct GlobalWeights<'a> {
    /// `n_vocab` rows of `n_embd`.
    pub token_embd: WeightMatrix<'a>,
    pub output_norm: F32Vector<'a>,
    /// The output head (`token_embd` when tied).
    pub output: WeightMatrix<'a>,
    pub rope_freqs: Option<F32Vector<'a>>,
}

impl<'a> GlobalWeights<'a> {
    pub fn from_extent(layout: &GlobalsLayout, bytes: &'a [u8]) -> Result<Self, GgufError> {
        check_len("globals extent", &layout.extent, bytes)?;
        Ok(GlobalWeights {
            token_embd: matrix(&layout.token_embd, bytes),
            output_norm: vector(&layout.output_norm, bytes),
            output: matrix(&layout.output, bytes),
            rope_freqs: layout.rope_freqs.as_ref().map(|t| vector(t, bytes)),
        })
    }
}
