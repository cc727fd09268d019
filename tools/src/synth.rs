//! `synth`: synthetic LLaMA-shaped GGUF models of real sizes, for testing
//! and measuring AXIOM at scale without downloading multi-GB weights.
//!
//! The file is a plain GGUF v3 (`general.architecture = llama`, llama.cpp's
//! tensor names and order, 32-byte alignment) with the tokenizer of the
//! default model (SmolLM2's vocabulary and merges, copied key by key) and
//! random weights at scales that keep a forward pass well behaved: every
//! matrix is drawn uniformly with the standard deviation `gain / sqrt(fan_in)`
//! (so each projection keeps activations near unit RMS, the residual stream
//! stays finite through every layer) and the output head's gain makes the
//! logits spread over several units (greedy decoding has clear margins).
//! Each tensor has its own generator, seeded from `--seed` and the tensor's
//! name, so the bytes do not depend on the order of generation. Tensors are
//! generated and quantized a chunk of rows at a time and written straight
//! to disk: an 8B shape never sits in memory.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use axiom_engine::ggml_type::GgmlType;
use axiom_engine::gguf::MetaValue;
use axiom_engine::quant;

use crate::pack::source::GgufFile;
use crate::pack::writer::{self, TensorEntry, Value};

/// GGUF's default data alignment (no `general.alignment` key).
const ALIGN: u64 = 32;
/// Rows generated and quantized per write.
const CHUNK_ROWS: usize = 256;

/// A model shape, from the real model's configuration (the vocabulary is
/// always the default model's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub name: &'static str,
    pub n_layers: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    /// The output head is the token embedding.
    pub tied: bool,
    pub rope_base: f32,
    pub rms_eps: f32,
    pub n_ctx_train: u32,
}

pub const SHAPES: [Shape; 4] = [
    // Meta Llama 3 8B: config.json of the release.
    Shape {
        name: "llama3-8b",
        n_layers: 32,
        n_embd: 4096,
        n_ff: 14336,
        n_heads: 32,
        n_kv_heads: 8,
        tied: false,
        rope_base: 500000.0,
        rms_eps: 1e-5,
        n_ctx_train: 8192,
    },
    // Llama 3.2 1B: 16 layers of width 2048, tied embeddings.
    Shape {
        name: "llama-1b",
        n_layers: 16,
        n_embd: 2048,
        n_ff: 8192,
        n_heads: 32,
        n_kv_heads: 8,
        tied: true,
        rope_base: 500000.0,
        rms_eps: 1e-5,
        n_ctx_train: 8192,
    },
    // SmolLM2-135M (the default model's own shape).
    Shape {
        name: "llama-135m",
        n_layers: 30,
        n_embd: 576,
        n_ff: 1536,
        n_heads: 9,
        n_kv_heads: 3,
        tied: true,
        rope_base: 100000.0,
        rms_eps: 1e-5,
        n_ctx_train: 8192,
    },
    // A few MiB, for fast tests.
    Shape {
        name: "tiny",
        n_layers: 2,
        n_embd: 128,
        n_ff: 384,
        n_heads: 4,
        n_kv_heads: 2,
        tied: true,
        rope_base: 10000.0,
        rms_eps: 1e-5,
        n_ctx_train: 2048,
    },
];

impl Shape {
    pub fn by_name(name: &str) -> Result<Shape> {
        match SHAPES.iter().find(|s| s.name == name) {
            Some(s) => Ok(*s),
            None => bail!("unknown shape {name:?}: use one of {}", SHAPES.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")),
        }
    }

    fn head_dim(&self) -> usize {
        self.n_embd / self.n_heads
    }

    fn kv_dim(&self) -> usize {
        self.head_dim() * self.n_kv_heads
    }
}

/// Standard deviation of the output head, times `sqrt(n_embd)`: logits
/// spread with a standard deviation of about 4 (a normalised hidden state
/// has unit RMS).
const HEAD_GAIN: f32 = 4.0;
/// Gain of the projections that write into the residual stream (attention
/// output, FFN down): half a unit per layer, so the stream grows slowly.
const RESIDUAL_GAIN: f32 = 0.5;

/// What a tensor holds.
#[derive(Clone, Copy, Debug)]
enum Fill {
    /// Norm weights: around one.
    Norm,
    /// A matrix: uniform with standard deviation `gain / sqrt(cols)`.
    Matrix { gain: f32 },
}

struct Tensor {
    name: String,
    /// GGUF dims: row length first.
    cols: usize,
    rows: usize,
    ty: GgmlType,
    fill: Fill,
}

impl Tensor {
    fn dims(&self) -> Vec<u64> {
        if self.rows == 1 {
            vec![self.cols as u64]
        } else {
            vec![self.cols as u64, self.rows as u64]
        }
    }

    fn row_bytes(&self) -> Result<u64> {
        self.ty.row_bytes(self.cols as u64).ok_or_else(|| anyhow::anyhow!("{}: {} columns do not fit {:?} blocks", self.name, self.cols, self.ty))
    }

    fn bytes(&self) -> Result<u64> {
        self.row_bytes()?.checked_mul(self.rows as u64).context("tensor size overflows")
    }
}

/// Types of a synthetic model's tensors.
#[derive(Clone, Copy, Debug)]
pub struct Types {
    /// The blocks' weight matrices.
    pub matrices: GgmlType,
    /// The token embedding and the output head.
    pub embeddings: GgmlType,
}

/// Every tensor of `shape`, in llama.cpp's order (globals, then each block).
fn tensors(shape: &Shape, types: Types, n_vocab: usize) -> Vec<Tensor> {
    let (e, ff, q, kv) = (shape.n_embd, shape.n_ff, shape.n_embd, shape.kv_dim());
    let ty = types.matrices;
    let m = |name: String, cols, rows, gain| Tensor { name, cols, rows, ty, fill: Fill::Matrix { gain } };
    let embd = |name: &str| Tensor { name: name.into(), cols: e, rows: n_vocab, ty: types.embeddings, fill: Fill::Matrix { gain: HEAD_GAIN } };
    let norm = |name: String| Tensor { name, cols: e, rows: 1, ty: GgmlType::F32, fill: Fill::Norm };
    let mut out = vec![embd("token_embd.weight"), norm("output_norm.weight".into())];
    if !shape.tied {
        out.push(embd("output.weight"));
    }
    for l in 0..shape.n_layers {
        let b = |s: &str| format!("blk.{l}.{s}");
        out.push(norm(b("attn_norm.weight")));
        out.push(m(b("attn_q.weight"), e, q, 1.0));
        out.push(m(b("attn_k.weight"), e, kv, 1.0));
        out.push(m(b("attn_v.weight"), e, kv, 1.0));
        out.push(m(b("attn_output.weight"), q, e, RESIDUAL_GAIN));
        out.push(norm(b("ffn_norm.weight")));
        out.push(m(b("ffn_gate.weight"), e, ff, 1.0));
        out.push(m(b("ffn_up.weight"), e, ff, 1.0));
        out.push(m(b("ffn_down.weight"), ff, e, RESIDUAL_GAIN));
    }
    out
}

/// SplitMix64: small, fast, and good enough for weights.
struct Rng(u64);

impl Rng {
    fn for_tensor(seed: u64, name: &str) -> Rng {
        // FNV-1a of the name, mixed with the seed.
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ h)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Two uniform samples in [-1, 1) from one draw.
    fn pair(&mut self) -> (f32, f32) {
        let x = self.next_u64();
        let scale = 1.0 / (1u64 << 31) as f32;
        (((x >> 32) as u32 as f32) * scale - 1.0, ((x as u32) as f32) * scale - 1.0)
    }

    fn fill(&mut self, out: &mut [f32], amplitude: f32, center: f32) {
        for pair in out.chunks_mut(2) {
            let (a, b) = self.pair();
            pair[0] = center + a * amplitude;
            if let Some(x) = pair.get_mut(1) {
                *x = center + b * amplitude;
            }
        }
    }
}

/// What `synth` wrote.
#[derive(Debug)]
pub struct SynthReport {
    pub tensors: usize,
    pub params: u64,
    pub file_size: u64,
    pub n_vocab: usize,
}

fn pad(x: u64) -> u64 {
    x.next_multiple_of(ALIGN)
}

/// Each tensor's offset in the data section, and the section's size.
fn data_layout(tensors: &[Tensor]) -> Result<(Vec<u64>, u64)> {
    let mut offsets = Vec::with_capacity(tensors.len());
    let mut at = 0u64;
    for t in tensors {
        offsets.push(at);
        at = at.checked_add(pad(t.bytes()?)).context("model size overflows")?;
    }
    Ok((offsets, at))
}

/// Writes the synthetic model `shape` with matrices of type `ty` to `out`,
/// with the tokenizer of `tokenizer_model` (a GGUF file). Written to a
/// temporary file beside `out`, then renamed.
pub fn synth(shape: &Shape, types: Types, seed: u64, tokenizer_model: &Path, out: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<SynthReport> {
    let ty = types.matrices;
    for t in [types.matrices, types.embeddings] {
        if !matches!(t, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 | GgmlType::F16 | GgmlType::F32) {
            bail!("unsupported type {t:?}: use q4_0, q4_1, q8_0, f16 or f32");
        }
    }
    if !shape.n_embd.is_multiple_of(shape.n_heads) || !shape.n_heads.is_multiple_of(shape.n_kv_heads) {
        bail!("shape {}: heads do not divide the width", shape.name);
    }
    let src = GgufFile::open(tokenizer_model)?;
    let g = src.gguf();
    let n_vocab = match g.get_array("tokenizer.ggml.tokens") {
        Some(tokens) => tokens.len(),
        None => bail!("{}: no tokenizer.ggml.tokens (the tokenizer comes from this file)", tokenizer_model.display()),
    };
    let name = format!("axiom-synth {} {} seed {seed}", shape.name, ty.name());
    let mut kvs: Vec<(String, Value<'_>)> = vec![
        ("general.architecture".into(), Value::Copied(MetaValue::Str(b"llama"))),
        ("general.name".into(), Value::Copied(MetaValue::Str(name.as_bytes()))),
        ("llama.block_count".into(), Value::U32(shape.n_layers as u32)),
        ("llama.context_length".into(), Value::U32(shape.n_ctx_train)),
        ("llama.embedding_length".into(), Value::U32(shape.n_embd as u32)),
        ("llama.feed_forward_length".into(), Value::U32(shape.n_ff as u32)),
        ("llama.attention.head_count".into(), Value::U32(shape.n_heads as u32)),
        ("llama.attention.head_count_kv".into(), Value::U32(shape.n_kv_heads as u32)),
        ("llama.rope.freq_base".into(), Value::Copied(MetaValue::F32(shape.rope_base))),
        ("llama.rope.dimension_count".into(), Value::U32(shape.head_dim() as u32)),
        ("llama.attention.layer_norm_rms_epsilon".into(), Value::Copied(MetaValue::F32(shape.rms_eps))),
        ("llama.vocab_size".into(), Value::U32(n_vocab as u32)),
    ];
    if let Some(ftype) = crate::pack::llama_ftype(ty) {
        kvs.push(("general.file_type".into(), Value::U32(ftype)));
    }
    kvs.push(("general.quantization_version".into(), Value::U32(2)));
    kvs.extend(g.metadata().iter().filter(|m| m.key.starts_with("tokenizer.")).map(|m| (m.key.to_string(), Value::Copied(m.value))));

    let tensors = tensors(shape, types, n_vocab);
    let (offsets, data_bytes) = data_layout(&tensors)?;
    let dims: Vec<Vec<u64>> = tensors.iter().map(Tensor::dims).collect();
    let entries: Vec<TensorEntry<'_>> =
        tensors.iter().zip(&dims).zip(&offsets).map(|((t, d), &offset)| TensorEntry { name: &t.name, dims: d, ty: t.ty, offset }).collect();
    let header = writer::header(&kvs, &entries);
    let data_offset = pad(header.len() as u64);

    let tmp = out.with_file_name(format!(".{}.partial", out.file_name().and_then(|n| n.to_str()).unwrap_or("synth.gguf")));
    let result = (|| -> Result<u64> {
        let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut w = BufWriter::with_capacity(4 << 20, file);
        w.write_all(&header)?;
        w.write_all(&vec![0u8; (data_offset - header.len() as u64) as usize])?;
        let mut row = Vec::new();
        let mut buf = Vec::new();
        let mut written = 0u64;
        for (t, &offset) in tensors.iter().zip(&offsets) {
            debug_assert_eq!(written, offset);
            let row_bytes = t.row_bytes()? as usize;
            let mut rng = Rng::for_tensor(seed, &t.name);
            row.resize(t.cols, 0.0f32);
            let mut done = 0;
            while done < t.rows {
                let rows = CHUNK_ROWS.min(t.rows - done);
                buf.resize(rows * row_bytes, 0);
                for out in buf.chunks_exact_mut(row_bytes) {
                    match t.fill {
                        Fill::Norm => rng.fill(&mut row, 0.1, 1.0),
                        // Uniform on [-a, a] has standard deviation a / sqrt(3).
                        Fill::Matrix { gain } => rng.fill(&mut row, gain * 3f32.sqrt() / (t.cols as f32).sqrt(), 0.0),
                    }
                    quant::quantize_row(t.ty, &row, out).map_err(|e| anyhow::anyhow!("tensor {}: {e}", t.name))?;
                }
                w.write_all(&buf)?;
                done += rows;
                written += buf.len() as u64;
                progress(written, data_bytes);
            }
            let padded = pad(written);
            w.write_all(&vec![0u8; (padded - written) as usize])?;
            written = padded;
        }
        w.flush()?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let mut file = file;
        Ok(file.seek(SeekFrom::End(0))?)
    })();
    let file_size = match result {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, out).with_context(|| format!("cannot rename {} to {}", tmp.display(), out.display()))?;
    let params = tensors.iter().map(|t| t.rows as u64 * t.cols as u64).sum();
    Ok(SynthReport { tensors: tensors.len(), params, file_size, n_vocab })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2_VOCAB: usize = 49152;

    #[test]
    fn llama3_8b_has_the_real_shape_and_is_larger_than_4_gib() {
        let s = Shape::by_name("llama3-8b").unwrap();
        assert_eq!((s.n_layers, s.n_embd, s.n_ff, s.n_heads, s.n_kv_heads, s.tied), (32, 4096, 14336, 32, 8, false));
        let t = tensors(&s, Types { matrices: GgmlType::Q4_0, embeddings: GgmlType::Q8_0 }, SMOLLM2_VOCAB);
        assert_eq!(t.len(), 3 + 32 * 9);
        assert!(t.iter().any(|t| t.name == "output.weight"));
        let params: u64 = t.iter().map(|t| (t.rows * t.cols) as u64).sum();
        // 32 blocks of 218 M weights and two 201 M embedding matrices.
        assert_eq!(params, 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096) + 2 * 49152 * 4096 + 4096);
        // With Q4_0 blocks and Q8_0 embedding and head (`pack`'s default
        // types), larger than a 4 GiB machine.
        let (_, bytes) = data_layout(&t).unwrap();
        assert!(bytes > 4 << 30 && bytes < 9 << 29, "{bytes}");
        let k = t.iter().find(|t| t.name == "blk.0.attn_k.weight").unwrap();
        assert_eq!((k.cols, k.rows), (4096, 1024));
    }

    #[test]
    fn unknown_shapes_are_refused_with_the_list() {
        let e = Shape::by_name("llama-70b").unwrap_err().to_string();
        assert!(e.contains("llama3-8b") && e.contains("tiny"), "{e}");
    }

    #[test]
    fn weights_have_the_planned_scale_and_depend_on_seed_and_name() {
        let mut row = vec![0.0f32; 4096];
        Rng::for_tensor(1, "blk.0.attn_q.weight").fill(&mut row, 3f32.sqrt() / 64.0, 0.0);
        let rms = (row.iter().map(|x| x * x).sum::<f32>() / row.len() as f32).sqrt();
        assert!((rms - 1.0 / 64.0).abs() < 0.001, "{rms}");
        let mut other = vec![0.0f32; 4096];
        Rng::for_tensor(2, "blk.0.attn_q.weight").fill(&mut other, 1.0, 0.0);
        let mut third = vec![0.0f32; 4096];
        Rng::for_tensor(1, "blk.0.attn_k.weight").fill(&mut third, 1.0, 0.0);
        assert!(row.iter().zip(&other).any(|(a, b)| a != b) && other.iter().zip(&third).any(|(a, b)| a != b));
    }
}
