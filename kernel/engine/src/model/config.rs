//! Hyper-parameters of a LLaMA-family model, read from GGUF metadata.
//!
//! Nothing is hard-coded to one model: every size comes from the
//! `{arch}.*` keys, checked against each other and against the tensors.

use alloc::format;
use alloc::string::{String, ToString};

use crate::gguf::{Gguf, GgufError};

/// How RoPE pairs the dimensions of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeLayout {
    /// LLaMA: rotate adjacent pairs `(2i, 2i+1)`.
    Adjacent,
    /// GPT-NeoX style: rotate `(i, i + n_rot/2)`, the two halves of the head.
    NeoX,
}

/// Rotary position embedding parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeConfig {
    pub layout: RopeLayout,
    /// Rotated dimensions per head (`rope.dimension_count`, default head_dim);
    /// the rest of the head passes through.
    pub n_rot: usize,
    /// `rope.freq_base` (default 10000).
    pub freq_base: f32,
    /// Position scale: 1 / `rope.scaling.factor` for linear scaling, else 1.
    pub freq_scale: f32,
}

/// Model architectures this engine runs: the LLaMA block (RMSNorm,
/// grouped-query attention with RoPE, gated FFN), with per-architecture
/// RoPE layout, optional Q/K/V biases, per-head Q/K norms, post-norms,
/// FFN activation and sliding-window layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// `llama` (LLaMA 1/2/3, Mistral, SmolLM, TinyLlama, ...): adjacent-pair
    /// RoPE, Llama 3's `rope_freqs.weight` when present.
    Llama,
    /// `qwen2`: NeoX RoPE, biases on Q/K/V.
    Qwen2,
    /// `qwen3`: NeoX RoPE, per-head RMSNorm of Q and K before RoPE.
    Qwen3,
    /// `gemma3`: embeddings scaled by sqrt(n_embd), per-head Q/K RMSNorm,
    /// NeoX RoPE (base 10,000 on the sliding-window layers), sliding-window
    /// attention on five layers of six, RMSNorm of the attention and FFN
    /// outputs before the residual add, GELU (tanh) gated FFN.
    Gemma3,
}

/// The activation of the gated FFN: `act(x·Wgate) * (x·Wup)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FfnActivation {
    /// SiLU (SwiGLU): LLaMA, Qwen.
    Silu,
    /// GELU, tanh approximation (GeGLU): Gemma.
    GeluTanh,
}

/// Sliding-window attention: layer `l` is a *local* layer, attending to the
/// last `window` positions only, unless `l % pattern == pattern - 1` (a
/// global layer, full causal attention).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlidingWindow {
    pub window: usize,
    pub pattern: usize,
}

impl Arch {
    pub const SUPPORTED: &'static str = "llama, qwen2, qwen3, gemma3";

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" => Some(Arch::Llama),
            "qwen2" => Some(Arch::Qwen2),
            "qwen3" => Some(Arch::Qwen3),
            "gemma3" => Some(Arch::Gemma3),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3",
        }
    }

    pub fn rope_layout(self) -> RopeLayout {
        match self {
            Arch::Llama => RopeLayout::Adjacent,
            Arch::Qwen2 | Arch::Qwen3 | Arch::Gemma3 => RopeLayout::NeoX,
        }
    }

    /// Whether each layer has `attn_q_norm` / `attn_k_norm` (per-head RMSNorm
    /// of the queries and keys, `head_dim` weights, before RoPE).
    pub fn has_qk_norm(self) -> bool {
        matches!(self, Arch::Qwen3 | Arch::Gemma3)
    }

    /// Whether each layer has `post_attention_norm` / `post_ffw_norm`
    /// (RMSNorm of the attention and FFN outputs before the residual add).
    pub fn has_post_norms(self) -> bool {
        matches!(self, Arch::Gemma3)
    }

    pub fn ffn_activation(self) -> FfnActivation {
        match self {
            Arch::Gemma3 => FfnActivation::GeluTanh,
            _ => FfnActivation::Silu,
        }
    }
}

/// Everything the forward pass needs to know about a model's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub arch: Arch,
    pub n_layers: usize,
    /// Width of the residual stream (`embedding_length`).
    pub n_embd: usize,
    /// Hidden width of the FFN (`feed_forward_length`).
    pub n_ff: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub n_vocab: usize,
    /// Context length the model was trained with (`context_length`).
    pub n_ctx_train: usize,
    pub rms_eps: f32,
    /// Scale of the attention scores (1/sqrt(head_dim) unless `attention.scale` says otherwise).
    pub attn_scale: f32,
    pub rope: RopeConfig,
    /// RoPE of the sliding-window layers when it differs from `rope`
    /// (Gemma 3: base 10,000, no scaling); `None`: every layer uses `rope`.
    pub rope_local: Option<RopeConfig>,
    /// No `output.weight`: the output head reuses `token_embd`.
    pub tied_output: bool,
    /// Token embeddings are multiplied by this (Gemma: sqrt(n_embd); else 1).
    pub embd_scale: f32,
    /// Per-head RMSNorm of Q and K before RoPE ([`Arch::has_qk_norm`]).
    pub qk_norm: bool,
    /// RMSNorm of the attention and FFN outputs ([`Arch::has_post_norms`]).
    pub post_norms: bool,
    pub ffn_act: FfnActivation,
    /// Sliding-window layers (Gemma 3), `None`: every layer attends fully.
    pub sliding_window: Option<SlidingWindow>,
}

/// Upper bounds that keep a corrupt file from asking for absurd allocations
/// before the tensor shapes have been checked.
const MAX_LAYERS: u32 = 4096;
const MAX_WIDTH: u32 = 1 << 20;
const MAX_HEADS: u32 = 1 << 12;

impl ModelConfig {
    /// The sliding attention window of `layer`: `Some(w)` means a query at
    /// position `p` attends to positions `p + 1 - w ..= p` only (Gemma 3's
    /// local layers); `None` is full causal attention. Every architecture
    /// supported so far but Gemma 3 attends fully.
    pub fn attention_window(&self, layer: usize) -> Option<usize> {
        let sw = self.sliding_window?;
        (layer % sw.pattern != sw.pattern - 1).then_some(sw.window)
    }

    /// The RoPE parameters of `layer` (Gemma 3's local layers have their own).
    pub fn rope_of(&self, layer: usize) -> &RopeConfig {
        match (&self.rope_local, self.attention_window(layer)) {
            (Some(local), Some(_)) => local,
            _ => &self.rope,
        }
    }

    /// Which RoPE table `layer` uses: 0 (`rope`) or 1 (`rope_local`).
    pub fn rope_table_of(&self, layer: usize) -> usize {
        usize::from(self.rope_local.is_some() && self.attention_window(layer).is_some())
    }

    /// How many RoPE tables the state keeps (1, or 2 with `rope_local`).
    pub fn rope_tables(&self) -> usize {
        1 + usize::from(self.rope_local.is_some())
    }

    pub fn from_gguf(g: &Gguf<'_>) -> Result<Self, GgufError> {
        let arch_name = g.req_str("general.architecture")?;
        let arch = Arch::from_name(arch_name).ok_or_else(|| GgufError::UnsupportedArchitecture { arch: arch_name.to_string() })?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let bounded = |k: &str, max: u32| -> Result<usize, GgufError> {
            let full = key(k);
            let v = g.req_u32(&full)?;
            if v == 0 || v > max {
                return Err(GgufError::BadMetadata { key: full, reason: "out of the range this engine accepts" });
            }
            Ok(v as usize)
        };

        let n_layers = bounded("block_count", MAX_LAYERS)?;
        let n_embd = bounded("embedding_length", MAX_WIDTH)?;
        let n_ff = bounded("feed_forward_length", MAX_WIDTH)?;
        let n_heads = bounded("attention.head_count", MAX_HEADS)?;
        let n_kv_heads = match g.opt_u32(&key("attention.head_count_kv"))? {
            None => n_heads,
            Some(_) => bounded("attention.head_count_kv", MAX_HEADS)?,
        };
        let n_ctx_train = bounded("context_length", u32::MAX)?;
        if n_heads % n_kv_heads != 0 {
            return Err(GgufError::BadMetadata { key: key("attention.head_count_kv"), reason: "does not divide the head count" });
        }
        let head_dim = match g.opt_u32(&key("attention.key_length"))? {
            Some(_) => bounded("attention.key_length", MAX_WIDTH)?,
            None => {
                if n_embd % n_heads != 0 {
                    return Err(GgufError::BadMetadata { key: key("attention.head_count"), reason: "does not divide the embedding length" });
                }
                n_embd / n_heads
            }
        };
        if let Some(v) = g.opt_u32(&key("attention.value_length"))? {
            if v as usize != head_dim {
                return Err(GgufError::UnsupportedFeature { what: String::from("attention value length different from the key length") });
            }
        }
        if head_dim % 2 != 0 {
            return Err(GgufError::BadMetadata { key: key("attention.key_length"), reason: "the head dimension is odd" });
        }
        let rms_eps = g.opt_f32(&key("attention.layer_norm_rms_epsilon"))?.ok_or_else(|| GgufError::MissingKey { key: key("attention.layer_norm_rms_epsilon") })?;
        if !(rms_eps > 0.0 && rms_eps < 1.0) {
            return Err(GgufError::BadMetadata { key: key("attention.layer_norm_rms_epsilon"), reason: "not in (0, 1)" });
        }
        let attn_scale = match g.opt_f32(&key("attention.scale"))? {
            Some(s) if s.is_finite() && s > 0.0 => s,
            Some(_) => return Err(GgufError::BadMetadata { key: key("attention.scale"), reason: "not a positive number" }),
            // Gemma 3 27B (62 layers, as llama.cpp recognizes it) scales
            // queries by 1/sqrt(n_embd / n_heads), not 1/sqrt(head_dim).
            None if arch == Arch::Gemma3 && n_layers == 62 => 1.0 / libm::sqrtf((n_embd / n_heads) as f32),
            None => 1.0 / libm::sqrtf(head_dim as f32),
        };

        let n_rot = match g.opt_u32(&key("rope.dimension_count"))? {
            None => head_dim,
            Some(n) if n as usize <= head_dim && n % 2 == 0 && n > 0 => n as usize,
            Some(_) => return Err(GgufError::BadMetadata { key: key("rope.dimension_count"), reason: "must be even and at most the head dimension" }),
        };
        let freq_base = g.opt_f32(&key("rope.freq_base"))?.unwrap_or(10000.0);
        if !(freq_base.is_finite() && freq_base > 1.0) {
            return Err(GgufError::BadMetadata { key: key("rope.freq_base"), reason: "must be a finite number above 1" });
        }
        let freq_scale = rope_freq_scale(g, arch_name)?;

        // Vocabulary: the embedding's row count, which the token list and
        // `vocab_size` (when present) must agree with.
        let embd = g.req_tensor("token_embd.weight")?;
        let n_vocab = embd.dims[1] as usize;
        if embd.n_dims != 2 || embd.dims[0] as usize != n_embd {
            return Err(shape_mismatch(embd, [n_embd as u64, embd.dims[1], 1, 1], 2));
        }
        if let Some(tokens) = g.get_array("tokenizer.ggml.tokens") {
            if tokens.len() != n_vocab {
                return Err(GgufError::BadMetadata { key: "tokenizer.ggml.tokens".to_string(), reason: "its length differs from the embedding's row count" });
            }
        }
        if let Some(v) = g.opt_u32(&key("vocab_size"))? {
            if v as usize != n_vocab {
                return Err(GgufError::BadMetadata { key: key("vocab_size"), reason: "differs from the embedding's row count" });
            }
        }
        let tied_output = g.tensor("output.weight").is_none();

        let rope = RopeConfig { layout: arch.rope_layout(), n_rot, freq_base, freq_scale };
        let (sliding_window, rope_local) = match arch {
            Arch::Gemma3 => match g.opt_u32(&key("attention.sliding_window"))? {
                // As llama.cpp: no window key (or 0) means every layer is global.
                None | Some(0) => (None, None),
                Some(w) => {
                    // Local layers: RoPE base 10,000, no scaling (llama.cpp's
                    // `rope_freq_base_train_swa` for Gemma 3).
                    let local = RopeConfig { freq_base: 10000.0, freq_scale: 1.0, ..rope };
                    (Some(SlidingWindow { window: w as usize, pattern: 6 }), Some(local))
                }
            },
            // llama.cpp ignores a window key in these architectures.
            _ => (None, None),
        };
        let embd_scale = match arch {
            Arch::Gemma3 => libm::sqrtf(n_embd as f32),
            _ => 1.0,
        };

        Ok(ModelConfig {
            arch,
            n_layers,
            n_embd,
            n_ff,
            n_heads,
            n_kv_heads,
            head_dim,
            n_vocab,
            n_ctx_train,
            rms_eps,
            attn_scale,
            rope,
            rope_local,
            tied_output,
            embd_scale,
            qk_norm: arch.has_qk_norm(),
            post_norms: arch.has_post_norms(),
            ffn_act: arch.ffn_activation(),
            sliding_window,
        })
    }

    /// Width of the concatenated query heads.
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    /// Width of the concatenated key (or value) heads.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Query heads sharing one key/value head.
    pub fn gqa_group(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }
}

/// 1 / linear scaling factor, as llama.cpp reads it (`rope.scaling.factor`,
/// else the older `rope.scale_linear`; 0 or absent means no scaling). Scaling
/// types other than linear (YaRN, LongRoPE, ...) are refused.
fn rope_freq_scale(g: &Gguf<'_>, arch: &str) -> Result<f32, GgufError> {
    let ty_key = format!("{arch}.rope.scaling.type");
    let factor_key = format!("{arch}.rope.scaling.factor");
    match g.opt_str(&ty_key)? {
        None | Some("linear") => {}
        Some("none") => return Ok(1.0),
        Some(other) => {
            return Err(GgufError::UnsupportedFeature { what: format!("RoPE scaling type {other:?} (supported: none, linear)") });
        }
    }
    let factor = match g.opt_f32(&factor_key)? {
        Some(f) => f,
        None => g.opt_f32(&format!("{arch}.rope.scale_linear"))?.unwrap_or(0.0),
    };
    if !(factor.is_finite() && factor >= 0.0) {
        return Err(GgufError::BadMetadata { key: factor_key, reason: "must be a non-negative number" });
    }
    Ok(if factor == 0.0 { 1.0 } else { 1.0 / factor })
}

pub(crate) fn shape_mismatch(t: &crate::gguf::TensorInfo<'_>, expected: [u64; 4], expected_dims: u8) -> GgufError {
    GgufError::ShapeMismatch { tensor: t.name.to_string(), expected, expected_dims, found: t.dims, found_dims: t.n_dims as u8 }
}
