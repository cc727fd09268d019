//! Deciding the packed image's layout: which extent each tensor belongs to,
//! the order of tensors, and each tensor's output type.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use axiom_engine::ggml_type::GgmlType;
use axiom_engine::gguf::{Gguf, TensorInfo};

/// Alignment of the data section, of every tensor, and so of every extent.
pub const ALIGN: u64 = axiom_engine::image::EXTENT_ALIGN;

pub fn pad(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

/// What to do with a class of tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeChoice {
    /// Copy the tensor as it is.
    Keep,
    /// Convert it to this type (a no-op when it already has it).
    To(GgmlType),
}

/// Type choices of a pack run.
#[derive(Clone, Copy, Debug)]
pub struct TypeRules {
    /// 2-D weight matrices of the blocks (attention and FFN projections).
    pub matrices: TypeChoice,
    /// `token_embd.weight` and `output.weight` (the output head).
    pub embeddings: TypeChoice,
}

/// Whether `pack` reads tensors of type `ty`: every type the engine runs
/// ([`GgmlType::is_supported`]: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
/// IQ4_NL, Q2_K..Q6_K), which it can also requantize from.
pub fn can_read(ty: GgmlType) -> bool {
    ty.is_supported()
}

/// The source types, for messages.
fn source_type_names() -> String {
    GgmlType::ALL.iter().filter(|t| can_read(**t)).map(|t| t.name()).collect::<Vec<_>>().join(", ")
}

/// Which extent a tensor goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Extent {
    Globals,
    Layer(usize),
}

/// One tensor of the output, in output order.
#[derive(Clone, Debug)]
pub struct Planned<'a> {
    pub src: TensorInfo<'a>,
    pub extent: Extent,
    pub out_ty: GgmlType,
    /// Bytes of the output tensor (unpadded).
    pub out_size: u64,
    /// Offset in the output's data section (a multiple of [`ALIGN`]).
    pub offset: u64,
}

/// The output layout.
pub struct Plan<'a> {
    pub tensors: Vec<Planned<'a>>,
    /// Data-section byte ranges: `[0]` the globals, then layer 0, 1, ...
    pub extents: Vec<(u64, u64)>,
    pub n_layers: usize,
}

/// Where a tensor sits in a layer, so each extent lists its tensors in the
/// order the forward pass uses them. Unknown names go last, in file order.
const LAYER_ORDER: &[&str] = &[
    "attn_norm.weight",
    "attn_norm.bias",
    "attn_q.weight",
    "attn_q.bias",
    "attn_k.weight",
    "attn_k.bias",
    "attn_v.weight",
    "attn_v.bias",
    "attn_qkv.weight",
    "attn_qkv.bias",
    "attn_q_norm.weight",
    "attn_k_norm.weight",
    "attn_output.weight",
    "attn_output.bias",
    "attn_post_norm.weight",
    "post_attention_norm.weight",
    "ffn_norm.weight",
    "ffn_gate.weight",
    "ffn_up.weight",
    "ffn_down.weight",
    "ffn_post_norm.weight",
    "post_ffw_norm.weight",
];
const GLOBAL_ORDER: &[&str] = &["token_embd.weight", "output_norm.weight", "output.weight", "rope_freqs.weight"];

/// `blk.N.rest` → (N, rest).
fn layer_of(name: &str) -> Option<(usize, &str)> {
    let rest = name.strip_prefix("blk.")?;
    let (n, rest) = rest.split_once('.')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    Some((n.parse().ok()?, rest))
}

/// Whether llama.cpp's quantizer would quantize this tensor: a weight with
/// at least two dimensions that is not a norm (nor an embedding, which has
/// its own rule, nor a MoE router or position table).
fn is_quantizable_matrix(t: &TensorInfo<'_>) -> bool {
    t.name.ends_with("weight")
        && t.n_dims >= 2
        && !t.name.contains("_norm.weight")
        && !t.name.contains("ffn_gate_inp.weight")
        && !t.name.contains("pos_embd")
        && !t.name.contains("token_types")
}

fn is_embedding(name: &str) -> bool {
    name == "token_embd.weight" || name == "output.weight"
}

/// The output type of tensor `t` under `rules`.
fn out_type(t: &TensorInfo<'_>, rules: &TypeRules) -> GgmlType {
    let choice = if is_embedding(t.name) {
        rules.embeddings
    } else if is_quantizable_matrix(t) {
        rules.matrices
    } else {
        TypeChoice::Keep
    };
    match choice {
        TypeChoice::Keep => t.ty,
        // Rows that are not whole blocks cannot be quantized: keep them (as
        // llama.cpp falls back to another type).
        TypeChoice::To(ty) if ty.row_bytes(t.row_len()).is_none() => t.ty,
        TypeChoice::To(ty) => ty,
    }
}

/// Lays out the tensors of `g` for the packed image.
pub fn plan<'a>(g: &Gguf<'a>, rules: &TypeRules) -> Result<Plan<'a>> {
    for t in g.tensors() {
        if !can_read(t.ty) {
            bail!(
                "tensor {} has type {}, which pack cannot read (supported source types: {}); \
                 convert the model with llama.cpp's llama-quantize to one of them first",
                t.name,
                t.ty,
                source_type_names()
            );
        }
    }

    // Group by extent, ordered inside each.
    let mut groups: BTreeMap<Extent, Vec<(usize, usize, TensorInfo<'a>)>> = BTreeMap::new();
    for (file_index, t) in g.tensors().iter().enumerate() {
        let (extent, rank) = match layer_of(t.name) {
            Some((n, rest)) => (Extent::Layer(n), LAYER_ORDER.iter().position(|&s| s == rest)),
            None => (Extent::Globals, GLOBAL_ORDER.iter().position(|&s| s == t.name)),
        };
        let rank = rank.unwrap_or(usize::MAX);
        groups.entry(extent).or_default().push((rank, file_index, *t));
    }
    let n_layers = groups.keys().filter(|e| matches!(e, Extent::Layer(_))).count();
    for (i, e) in groups.keys().filter(|e| matches!(e, Extent::Layer(_))).enumerate() {
        if *e != Extent::Layer(i) {
            bail!("the model has no tensors for layer {i} but has some for a later layer: refusing to pack a model with missing layers");
        }
    }
    let arch = g.get_str("general.architecture").unwrap_or("llama");
    if let Some(declared) = g.get_u32(&format!("{arch}.block_count")) {
        if declared as usize != n_layers && n_layers > 0 {
            bail!("{arch}.block_count is {declared} but the file has tensors for {n_layers} layers");
        }
    }

    let mut tensors = Vec::with_capacity(g.tensors().len());
    let mut extents = vec![(0, 0); n_layers + 1];
    let mut offset = 0u64;
    // Globals first (always present, possibly empty), then layers in order.
    let globals = groups.remove(&Extent::Globals).unwrap_or_default();
    let order = std::iter::once((Extent::Globals, globals)).chain(groups);
    for (extent, mut members) in order {
        members.sort_by_key(|&(rank, file_index, _)| (rank, file_index));
        let start = offset;
        for (_, _, src) in members {
            let out_ty = out_type(&src, rules);
            let row = out_ty.row_bytes(src.row_len()).expect("checked by out_type or by the reader");
            let out_size = row * src.rows();
            tensors.push(Planned { src, extent, out_ty, out_size, offset });
            offset += pad(out_size);
        }
        let slot = match extent {
            Extent::Globals => 0,
            Extent::Layer(n) => n + 1,
        };
        extents[slot] = (start, offset - start);
    }
    Ok(Plan { tensors, extents, n_layers })
}

/// llama.cpp's `general.file_type` for a model whose matrices are `ty`.
pub fn llama_ftype(ty: GgmlType) -> Option<u32> {
    match ty {
        GgmlType::F32 => Some(0),
        GgmlType::F16 => Some(1),
        GgmlType::Q4_0 => Some(2),
        GgmlType::Q4_1 => Some(3),
        GgmlType::Q8_0 => Some(7),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names() {
        assert_eq!(layer_of("blk.12.attn_q.weight"), Some((12, "attn_q.weight")));
        assert_eq!(layer_of("blk.0.ffn_up.weight"), Some((0, "ffn_up.weight")));
        assert_eq!(layer_of("blk.01.x"), None);
        assert_eq!(layer_of("blk.x.y"), None);
        assert_eq!(layer_of("token_embd.weight"), None);
    }

    #[test]
    fn padding() {
        assert_eq!(pad(0), 0);
        assert_eq!(pad(1), 4096);
        assert_eq!(pad(4096), 4096);
        assert_eq!(pad(4097), 8192);
    }
}
