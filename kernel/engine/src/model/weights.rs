//! Typed views of weight bytes, built from a layout and an extent's bytes,
//! with the matrices either in ggml's layout (straight from the file or a
//! streamed slot) or repacked for the SIMD kernels ([`super::packed`]).

use super::layout::{GlobalsLayout, LayerLayout, TensorRef};
use super::packed::PackedLayerPlan;
use crate::gguf::GgufError;
use crate::matmul::{Matrix, PackedView, WeightMatrix};

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

    /// Elements `start..end` (a head's slice of a bias).
    pub fn slice(&self, start: usize, end: usize) -> F32Vector<'a> {
        F32Vector { bytes: &self.bytes[start * 4..end * 4] }
    }
}

pub(super) fn ggml<'a>(t: &TensorRef, bytes: &'a [u8]) -> WeightMatrix<'a> {
    WeightMatrix { ty: t.ty, rows: t.rows, cols: t.cols, data: &bytes[t.range()] }
}

fn vector<'a>(t: &TensorRef, bytes: &'a [u8]) -> F32Vector<'a> {
    F32Vector { bytes: &bytes[t.range()] }
}

/// `bytes` must start at the extent's first byte and hold at least the
/// extent; more (a packed image's padding to 4 KiB) is ignored.
fn check_len(what: &'static str, expected: u64, bytes: &[u8]) -> Result<(), GgufError> {
    if (bytes.len() as u64) < expected {
        return Err(GgufError::ExtentMismatch { what, expected, found: bytes.len() as u64 });
    }
    Ok(())
}

/// The weights of one transformer block.
#[derive(Clone, Copy, Debug)]
pub struct LayerWeights<'a> {
    pub attn_norm: F32Vector<'a>,
    pub wq: Matrix<'a>,
    pub wk: Matrix<'a>,
    pub wv: Matrix<'a>,
    pub wo: Matrix<'a>,
    pub bq: Option<F32Vector<'a>>,
    pub bk: Option<F32Vector<'a>>,
    pub bv: Option<F32Vector<'a>>,
    pub ffn_norm: F32Vector<'a>,
    pub w_gate: Matrix<'a>,
    pub w_up: Matrix<'a>,
    pub w_down: Matrix<'a>,
    /// Per-head Q/K RMSNorm weights (qwen3, gemma3).
    pub q_norm: Option<F32Vector<'a>>,
    pub k_norm: Option<F32Vector<'a>>,
    /// Post-attention and post-FFN RMSNorm weights (gemma3).
    pub post_attn_norm: Option<F32Vector<'a>>,
    pub post_ffn_norm: Option<F32Vector<'a>>,
}

impl<'a> LayerWeights<'a> {
    /// Views of a layer's tensors inside `bytes`, the layer's extent
    /// (wherever it lives: mapped file, weight slot, resident copy), in
    /// ggml's layout. `bytes` starts at the extent's first byte; trailing
    /// bytes past the extent (padding) are allowed.
    pub fn from_extent(layout: &LayerLayout, bytes: &'a [u8]) -> Result<Self, GgufError> {
        check_len("layer extent", layout.extent.end - layout.extent.start, bytes)?;
        let m = |t: &TensorRef| Matrix::Ggml(ggml(t, bytes));
        Ok(LayerWeights {
            attn_norm: vector(&layout.attn_norm, bytes),
            wq: m(&layout.wq),
            wk: m(&layout.wk),
            wv: m(&layout.wv),
            wo: m(&layout.wo),
            bq: layout.bq.as_ref().map(|t| vector(t, bytes)),
            bk: layout.bk.as_ref().map(|t| vector(t, bytes)),
            bv: layout.bv.as_ref().map(|t| vector(t, bytes)),
            ffn_norm: vector(&layout.ffn_norm, bytes),
            w_gate: m(&layout.w_gate),
            w_up: m(&layout.w_up),
            w_down: m(&layout.w_down),
            q_norm: layout.q_norm.as_ref().map(|t| vector(t, bytes)),
            k_norm: layout.k_norm.as_ref().map(|t| vector(t, bytes)),
            post_attn_norm: layout.post_attn_norm.as_ref().map(|t| vector(t, bytes)),
            post_ffn_norm: layout.post_ffn_norm.as_ref().map(|t| vector(t, bytes)),
        })
    }

    /// Like [`Self::from_extent`], but the matrices that have a packed form
    /// are read from `packed`, the layer's area written by
    /// [`super::packed::pack_layer`] with the same `plan` (norms, biases and
    /// unpackable matrices still come from the extent).
    pub fn from_packed(layout: &LayerLayout, plan: &PackedLayerPlan, extent: &'a [u8], packed: &'a [u8]) -> Result<Self, GgufError> {
        let mut w = Self::from_extent(layout, extent)?;
        check_len("packed layer", plan.bytes as u64, packed)?;
        let slots = [&mut w.wq, &mut w.wk, &mut w.wv, &mut w.wo, &mut w.w_gate, &mut w.w_up, &mut w.w_down];
        for (slot, range) in slots.into_iter().zip(plan.matrices.iter()) {
            if let (Some(r), Matrix::Ggml(g)) = (range, *slot) {
                let view = PackedView::new(g.ty, g.rows, g.cols, &packed[r.clone()])
                    .map_err(|_| GgufError::ExtentMismatch { what: "packed matrix", expected: r.len() as u64, found: 0 })?;
                *slot = Matrix::Packed(view);
            }
        }
        Ok(w)
    }
}

/// The weights used outside the blocks.
#[derive(Clone, Copy, Debug)]
pub struct GlobalWeights<'a> {
    /// `n_vocab` rows of `n_embd`, in ggml's layout (rows are looked up).
    pub token_embd: WeightMatrix<'a>,
    pub output_norm: F32Vector<'a>,
    /// The output head (`token_embd` when tied); may be replaced by a packed
    /// copy ([`super::packed::PackedLayers::output`]).
    pub output: Matrix<'a>,
    pub rope_freqs: Option<F32Vector<'a>>,
}

impl<'a> GlobalWeights<'a> {
    pub fn from_extent(layout: &GlobalsLayout, bytes: &'a [u8]) -> Result<Self, GgufError> {
        check_len("globals extent", layout.extent.end - layout.extent.start, bytes)?;
        Ok(GlobalWeights {
            token_embd: ggml(&layout.token_embd, bytes),
            output_norm: vector(&layout.output_norm, bytes),
            output: Matrix::Ggml(ggml(&layout.output, bytes)),
            rope_freqs: layout.rope_freqs.as_ref().map(|t| vector(t, bytes)),
        })
    }
}
