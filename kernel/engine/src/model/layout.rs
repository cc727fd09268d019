//! Where each layer's tensors are, relative to the layer's *extent*.
//!
//! A layer's extent is the byte range of the file that spans all of its
//! tensors. Offsets inside a layout are relative to the extent's start, so the
//! same layout serves the host (the extent is a slice of the mapped file), a
//! kernel weight slot (the extent was streamed into the slot) or a resident
//! copy. The global tensors (embedding, final norm, output head) have an
//! extent of their own. In a file written by `cargo axiom pack` every extent
//! holds only its own tensors; in other files an extent may also span
//! unrelated bytes (see [`ModelLayout::is_compact`]).

use alloc::string::ToString;
use alloc::vec::Vec;
use core::ops::Range;

use super::config::{shape_mismatch, ModelConfig};
use crate::ggml_type::GgmlType;
use crate::gguf::{Gguf, GgufError, TensorInfo};

/// One tensor inside an extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorRef {
    /// Byte offset from the start of the extent.
    pub offset: usize,
    /// Bytes of data.
    pub size: usize,
    pub ty: GgmlType,
    /// Elements per row (`ne[0]`).
    pub cols: usize,
    /// Rows (1 for a vector).
    pub rows: usize,
}

impl TensorRef {
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.size
    }
}

/// The tensors of one transformer block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerLayout {
    /// Absolute byte range of the layer in the model file.
    pub extent: Range<u64>,
    pub attn_norm: TensorRef,
    pub wq: TensorRef,
    pub wk: TensorRef,
    pub wv: TensorRef,
    pub wo: TensorRef,
    /// Q/K/V biases (qwen2), `None` for llama.
    pub bq: Option<TensorRef>,
    pub bk: Option<TensorRef>,
    pub bv: Option<TensorRef>,
    pub ffn_norm: TensorRef,
    pub w_gate: TensorRef,
    pub w_up: TensorRef,
    pub w_down: TensorRef,
    /// Per-head RMSNorm weights of Q and K, `head_dim` each (qwen3, gemma3).
    pub q_norm: Option<TensorRef>,
    pub k_norm: Option<TensorRef>,
    /// RMSNorm weights of the attention output and the FFN output (gemma3).
    pub post_attn_norm: Option<TensorRef>,
    pub post_ffn_norm: Option<TensorRef>,
}

/// The tensors used outside the blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalsLayout {
    /// Absolute byte range spanning the global tensors.
    pub extent: Range<u64>,
    pub token_embd: TensorRef,
    pub output_norm: TensorRef,
    /// `output.weight`, or `token_embd` again when the head is tied.
    pub output: TensorRef,
    /// Llama-3 style per-dimension RoPE frequency factors (`rope_freqs.weight`).
    pub rope_freqs: Option<TensorRef>,
}

/// Per-layer and global layouts of a model file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelLayout {
    pub layers: Vec<LayerLayout>,
    pub globals: GlobalsLayout,
}

/// Checks a tensor's shape and type; returns its absolute range and geometry.
struct Found {
    abs: Range<u64>,
    ty: GgmlType,
    cols: usize,
    rows: usize,
}

/// A tensor the architecture `arch` needs: missing is an error naming both.
fn find(g: &Gguf<'_>, arch: &'static str, name: &str, shape: &[usize], matrix: bool) -> Result<Found, GgufError> {
    let t = g.tensor(name).ok_or_else(|| GgufError::MissingArchTensor { arch, name: name.to_string() })?;
    check(g, t, shape, matrix)
}

fn check(g: &Gguf<'_>, t: &TensorInfo<'_>, shape: &[usize], matrix: bool) -> Result<Found, GgufError> {
    let mut expected = [1u64; 4];
    for (e, &s) in expected.iter_mut().zip(shape) {
        *e = s as u64;
    }
    // Unused dimensions are 1 on both sides, so a 2-D [n, 1] norm matches [n].
    if t.dims != expected {
        return Err(shape_mismatch(t, expected, shape.len() as u8));
    }
    if matrix {
        t.check_supported()?;
    } else if t.ty != GgmlType::F32 {
        // Norm weights and biases are element-wise operands: f32 only (as ggml).
        return Err(crate::gguf::GgufError::UnsupportedTensorType { tensor: t.name.to_string(), ty: t.ty });
    }
    Ok(Found { abs: g.tensor_range(t), ty: t.ty, cols: shape[0], rows: shape.get(1).copied().unwrap_or(1) })
}

fn span<'a>(parts: impl Iterator<Item = &'a Range<u64>>) -> Range<u64> {
    let (mut start, mut end) = (u64::MAX, 0);
    for r in parts {
        start = start.min(r.start);
        end = end.max(r.end);
    }
    start..end
}

fn rel(f: &Found, extent: &Range<u64>) -> TensorRef {
    TensorRef {
        offset: (f.abs.start - extent.start) as usize,
        size: (f.abs.end - f.abs.start) as usize,
        ty: f.ty,
        cols: f.cols,
        rows: f.rows,
    }
}

impl ModelLayout {
    /// Finds and checks every tensor the forward pass uses: present, of the
    /// shape the config implies, of a supported type.
    pub fn from_gguf(g: &Gguf<'_>, cfg: &ModelConfig) -> Result<Self, GgufError> {
        let (e, q, kv, ff, hd) = (cfg.n_embd, cfg.q_dim(), cfg.kv_dim(), cfg.n_ff, cfg.head_dim);
        let arch = cfg.arch.name();
        let mut layers = Vec::with_capacity(cfg.n_layers);
        let mut name = alloc::string::String::new();
        for l in 0..cfg.n_layers {
            let mut get = |suffix: &str, shape: &[usize], matrix: bool| {
                name.clear();
                use core::fmt::Write;
                let _ = write!(name, "blk.{l}.{suffix}");
                find(g, arch, &name, shape, matrix)
            };
            let attn_norm = get("attn_norm.weight", &[e], false)?;
            let wq = get("attn_q.weight", &[e, q], true)?;
            let wk = get("attn_k.weight", &[e, kv], true)?;
            let wv = get("attn_v.weight", &[e, kv], true)?;
            let wo = get("attn_output.weight", &[q, e], true)?;
            let ffn_norm = get("ffn_norm.weight", &[e], false)?;
            let w_gate = get("ffn_gate.weight", &[e, ff], true)?;
            let w_up = get("ffn_up.weight", &[e, ff], true)?;
            let w_down = get("ffn_down.weight", &[ff, e], true)?;
            let (q_norm, k_norm) = if cfg.qk_norm {
                (Some(get("attn_q_norm.weight", &[hd], false)?), Some(get("attn_k_norm.weight", &[hd], false)?))
            } else {
                (None, None)
            };
            let (post_attn_norm, post_ffn_norm) = if cfg.post_norms {
                (Some(get("post_attention_norm.weight", &[e], false)?), Some(get("post_ffw_norm.weight", &[e], false)?))
            } else {
                (None, None)
            };
            let mut bias = |suffix: &str, n: usize| -> Result<Option<Found>, GgufError> {
                name.clear();
                use core::fmt::Write;
                let _ = write!(name, "blk.{l}.{suffix}");
                match g.tensor(&name) {
                    None => Ok(None),
                    Some(t) => check(g, t, &[n], false).map(Some),
                }
            };
            let bq = bias("attn_q.bias", q)?;
            let bk = bias("attn_k.bias", kv)?;
            let bv = bias("attn_v.bias", kv)?;
            let all = [&attn_norm, &wq, &wk, &wv, &wo, &ffn_norm, &w_gate, &w_up, &w_down];
            let optional = [&bq, &bk, &bv, &q_norm, &k_norm, &post_attn_norm, &post_ffn_norm];
            let extent = span(all.iter().map(|f| &f.abs).chain(optional.into_iter().flatten().map(|f| &f.abs)));
            let r = |f: &Found| rel(f, &extent);
            layers.push(LayerLayout {
                attn_norm: r(&attn_norm),
                wq: r(&wq),
                wk: r(&wk),
                wv: r(&wv),
                wo: r(&wo),
                bq: bq.as_ref().map(r),
                bk: bk.as_ref().map(r),
                bv: bv.as_ref().map(r),
                ffn_norm: r(&ffn_norm),
                w_gate: r(&w_gate),
                w_up: r(&w_up),
                w_down: r(&w_down),
                q_norm: q_norm.as_ref().map(r),
                k_norm: k_norm.as_ref().map(r),
                post_attn_norm: post_attn_norm.as_ref().map(r),
                post_ffn_norm: post_ffn_norm.as_ref().map(r),
                extent,
            });
        }

        let token_embd = find(g, arch, "token_embd.weight", &[e, cfg.n_vocab], true)?;
        let output_norm = find(g, arch, "output_norm.weight", &[e], false)?;
        let output = if cfg.tied_output { None } else { Some(find(g, arch, "output.weight", &[e, cfg.n_vocab], true)?) };
        let rope_freqs = match g.tensor("rope_freqs.weight") {
            None => None,
            Some(t) => Some(check(g, t, &[cfg.rope.n_rot / 2], false)?),
        };
        let extent = span([&token_embd, &output_norm].into_iter().chain(output.as_ref()).chain(rope_freqs.as_ref()).map(|f| &f.abs));
        let r = |f: &Found| rel(f, &extent);
        let globals = GlobalsLayout {
            token_embd: r(&token_embd),
            output_norm: r(&output_norm),
            output: r(output.as_ref().unwrap_or(&token_embd)),
            rope_freqs: rope_freqs.as_ref().map(r),
            extent,
        };
        Ok(ModelLayout { layers, globals })
    }

    /// Bytes of the largest layer extent (the size of a kernel weight slot).
    pub fn max_layer_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.extent.end - l.extent.start).max().unwrap_or(0)
    }

    /// Whether no extent overlaps another (true for files written by `pack`
    /// and for llama.cpp's usual tensor order): then streaming a layer moves
    /// only that layer's bytes.
    pub fn is_compact(&self) -> bool {
        let mut extents: Vec<&Range<u64>> = self.layers.iter().map(|l| &l.extent).collect();
        extents.push(&self.globals.extent);
        extents.sort_by_key(|r| r.start);
        extents.windows(2).all(|w| w[0].end <= w[1].start)
    }
}
