//! Inference state, sized once: the KV cache, the activations the team
//! shares, the RoPE table, and each worker's private scratch.
//!
//! [`SharedState`] is carved from one caller-provided `&mut [f32]` (the
//! kernel gives a piece of its tensor region; the host a `Vec`), so its size is
//! known up front ([`SharedState::floats_needed`]) and nothing is allocated
//! per token. [`Scratch`] is per worker and allocated once at start-up.
//!
//! Layouts:
//! - V cache: `[layer][kv_head][position]` rows of one head (`head_dim`
//!   elements of the [`KvType`]: f32, f16 or Q8_0 blocks); K cache: the same
//!   for Q8_0, and for f16 and f32 `[layer][kv_head][chunk][dim][position in
//!   the chunk]` (chunks of [`ATTN_CHUNK`] positions, `n_ctx` rounded up to
//!   whole chunks), so each head's keys and values are contiguous; one slab
//!   per layer in each, rounded up to 64 bytes;
//! - attention partials (decode split over positions):
//!   `[q_head][chunk][max, sum, head_dim outputs]`;
//! - `x` (residual stream): `[token][n_embd]`; `q`, `att`: `[token][q_dim]`;
//!   `hb` (FFN hidden): `[token][n_ff]`; `logits`: `[row][n_vocab]`;
//! - RoPE: `[table][position][n_rot / 2]` pairs `(cos, sin)`, one table, or
//!   two when the sliding-window layers rotate with their own base (Gemma 3);
//! - `post` (Gemma 3's post-norms only, else empty): `[token][n_embd]`, an
//!   attention or FFN output before its RMSNorm and residual add.

mod kv;

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};

use crate::matmul::ActBuf;
use crate::model::{Model, ModelConfig};
use crate::team::SharedBuf;

pub use kv::KvType;

/// Positions per attention chunk: decode attention splits the context into
/// chunks of this many positions (aligned at multiples of it), computes each
/// chunk's softmax partials on its own and combines them in chunk order, so
/// the result does not depend on how chunks are spread over threads.
pub const ATTN_CHUNK: usize = 128;

/// Queries per prefill attention tile: a seat scores a block of this many
/// consecutive tokens against each chunk of keys it decoded once.
pub const ATTN_QUERY_BLOCK: usize = 16;

/// Rows of a matmul tile computed per kernel call when the batch is larger
/// than one: bounds the per-worker output buffer (see [`Scratch`]).
pub const MATMUL_CHUNK_ROWS: usize = 512;

/// How much state to provision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateConfig {
    /// Context length: positions the KV cache holds.
    pub n_ctx: usize,
    /// Most tokens one forward call processes (prefill batch).
    pub max_batch: usize,
    /// Rows of logits kept per forward call: 1 for generation (the last
    /// token), `max_batch` to score every position.
    pub logit_rows: usize,
    /// How the KV cache stores keys and values.
    pub kv_type: KvType,
}

/// Why a state could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateError {
    /// A zero or inconsistent size (e.g. `logit_rows > max_batch`).
    BadConfig(&'static str),
    /// The KV type cannot hold this model's heads (Q8_0 needs a head size
    /// that is a multiple of 32).
    KvType { kv_type: KvType, head_dim: usize },
    /// The caller's memory is smaller than [`SharedState::floats_needed`].
    TooSmall { needed: usize, got: usize },
}

impl core::fmt::Display for StateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StateError::BadConfig(why) => write!(f, "bad inference state size: {why}"),
            StateError::KvType { kv_type, head_dim } => {
                write!(f, "a {kv_type} KV cache needs a head size that is a multiple of 32, this model's is {head_dim}: use f16 or f32")
            }
            StateError::TooSmall { needed, got } => {
                write!(f, "inference state needs {needed} floats ({} bytes), got {got}", needed * 4)
            }
        }
    }
}

impl core::error::Error for StateError {}

/// A state's memory in bytes, split as a kernel plans its region: the KV
/// cache (one K and one V slab per layer) and everything else (RoPE table,
/// activations, logits). Every size is checked against overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateBytes {
    /// One layer's K and V slabs: `n_kv_heads · row_bytes` per position
    /// each (`row_bytes` one head's row in the KV type), for `n_ctx`
    /// positions (V, Q8_0 K) or `n_ctx` rounded up to 128 (transposed f16
    /// and f32 K), each slab rounded up to 64 bytes.
    pub kv_per_layer: usize,
    /// KV cache bytes per position (all layers, K and V, unrounded).
    pub kv_per_token: usize,
    /// Layers, one KV slab pair each.
    pub layers: usize,
    /// The whole KV cache, `kv_per_layer · layers`.
    pub kv: usize,
    /// Everything else: RoPE table, activations, logits.
    pub other: usize,
}

impl StateBytes {
    /// The bytes a state for `model` and `cfg` needs (`None` if a size
    /// overflows `usize`).
    pub fn new(model: &ModelConfig, cfg: &StateConfig) -> Option<StateBytes> {
        let sizes = Sizes::new(model, cfg)?;
        let floats = sizes.total(model.n_layers)?;
        let kv_floats = sizes.k_layer.checked_add(sizes.v_layer)?.checked_mul(model.n_layers)?;
        let bytes = |floats: usize| floats.checked_mul(F32_BYTES);
        Some(StateBytes {
            kv_per_layer: bytes(sizes.k_layer.checked_add(sizes.v_layer)?)?,
            kv_per_token: sizes.row_bytes.checked_mul(2 * model.n_kv_heads)?.checked_mul(model.n_layers)?,
            layers: model.n_layers,
            kv: bytes(kv_floats)?,
            other: bytes(floats - kv_floats)?,
        })
    }

    /// All of it: `kv + other` (cannot overflow: checked by `new`).
    pub fn total(&self) -> usize {
        self.kv + self.other
    }
}

const F32_BYTES: usize = core::mem::size_of::<f32>();

/// Sizes of each part, in floats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sizes {
    rope: usize,
    /// Bytes of one head's key or value row in the KV type.
    row_bytes: usize,
    /// Attention partials: `n_heads · chunks · (head_dim + 2)`.
    part: usize,
    k_layer: usize,
    v_layer: usize,
    x: usize,
    q: usize,
    hb: usize,
    post: usize,
    logits: usize,
}

impl Sizes {
    fn new(cfg: &ModelConfig, sc: &StateConfig) -> Option<Sizes> {
        let m = |a: usize, b: usize| a.checked_mul(b);
        let row_bytes = sc.kv_type.row_bytes(cfg.head_dim)?;
        // One slab in f32 words, rounded up to 64 bytes.
        let slab = |positions: usize| Some(m(m(positions, cfg.n_kv_heads)?, row_bytes)?.checked_next_multiple_of(64)? / F32_BYTES);
        let k_positions = if sc.kv_type.transposed_keys() { sc.n_ctx.checked_next_multiple_of(ATTN_CHUNK)? } else { sc.n_ctx };
        Some(Sizes {
            rope: m(m(sc.n_ctx, cfg.rope.n_rot)?, cfg.rope_tables())?,
            row_bytes,
            part: m(m(cfg.n_heads, sc.n_ctx.div_ceil(ATTN_CHUNK))?, cfg.head_dim.checked_add(2)?)?,
            k_layer: slab(k_positions)?,
            v_layer: slab(sc.n_ctx)?,
            x: m(sc.max_batch, cfg.n_embd)?,
            q: m(sc.max_batch, cfg.q_dim())?,
            hb: m(sc.max_batch, cfg.n_ff)?,
            post: if cfg.post_norms { m(sc.max_batch, cfg.n_embd)? } else { 0 },
            logits: m(sc.logit_rows, cfg.n_vocab)?,
        })
    }

    fn total(&self, n_layers: usize) -> Option<usize> {
        let kv = self.k_layer.checked_add(self.v_layer)?.checked_mul(n_layers)?;
        [self.rope, kv, self.part, self.x, self.q, self.q, self.hb, self.post, self.logits].iter().try_fold(0usize, |a, &b| a.checked_add(b))
    }
}

/// What the leader publishes between generation steps.
pub(crate) struct Control {
    pub token: AtomicU32,
    pub generated: AtomicU32,
    /// 0: go on; otherwise 1 + the index of the stop reason.
    pub stop: AtomicU8,
}

/// State shared by the team: written by disjoint tiles during a forward call.
pub struct SharedState<'m> {
    pub(crate) cfg: StateConfig,
    pub(crate) rope: &'m [f32],
    pub(crate) k: SharedBuf<'m>,
    pub(crate) v: SharedBuf<'m>,
    /// Words (f32) per layer of each cache, and bytes per head row.
    pub(crate) k_layer: usize,
    pub(crate) v_layer: usize,
    pub(crate) row_bytes: usize,
    /// Attention partials of a decode step split over positions.
    pub(crate) part: SharedBuf<'m>,
    pub(crate) x: SharedBuf<'m>,
    pub(crate) q: SharedBuf<'m>,
    pub(crate) att: SharedBuf<'m>,
    pub(crate) hb: SharedBuf<'m>,
    pub(crate) post: SharedBuf<'m>,
    pub(crate) logits: SharedBuf<'m>,
    pub(crate) control: Control,
    /// What the state was sized for (see [`SharedState::fits`]).
    sizes: Sizes,
    n_layers: usize,
    /// A [`crate::team::Team`] is running on this state.
    pub(crate) team_running: AtomicBool,
}

impl<'m> SharedState<'m> {
    /// Floats of memory a state for `cfg` needs (`None` if it overflows);
    /// [`StateBytes`] splits it into the KV cache and the rest.
    pub fn floats_needed(model: &ModelConfig, cfg: &StateConfig) -> Option<usize> {
        Some(StateBytes::new(model, cfg)?.total() / F32_BYTES)
    }

    /// Builds the state in `mem` (at least [`Self::floats_needed`] floats) and
    /// fills the RoPE table. The KV cache needs no clearing: a position is
    /// always written before it is read.
    pub fn new(model: &Model<'_>, cfg: StateConfig, mem: &'m mut [f32]) -> Result<Self, StateError> {
        let mc = &model.config;
        if cfg.n_ctx == 0 || cfg.max_batch == 0 || cfg.logit_rows == 0 {
            return Err(StateError::BadConfig("context, batch and logit rows must be at least 1"));
        }
        if cfg.logit_rows > cfg.max_batch {
            return Err(StateError::BadConfig("more logit rows than batch rows"));
        }
        if cfg.kv_type.row_bytes(mc.head_dim).is_none() {
            return Err(StateError::KvType { kv_type: cfg.kv_type, head_dim: mc.head_dim });
        }
        let sizes = Sizes::new(mc, &cfg).ok_or(StateError::BadConfig("size overflows"))?;
        let needed = sizes.total(mc.n_layers).ok_or(StateError::BadConfig("size overflows"))?;
        if mem.len() < needed {
            return Err(StateError::TooSmall { needed, got: mem.len() });
        }
        let (rope, rest) = mem.split_at_mut(sizes.rope);
        fill_rope_tables(model, cfg.n_ctx, rope);
        let (k, rest) = rest.split_at_mut(sizes.k_layer * mc.n_layers);
        let (v, rest) = rest.split_at_mut(sizes.v_layer * mc.n_layers);
        let (part, rest) = rest.split_at_mut(sizes.part);
        let (x, rest) = rest.split_at_mut(sizes.x);
        let (q, rest) = rest.split_at_mut(sizes.q);
        let (att, rest) = rest.split_at_mut(sizes.q);
        let (hb, rest) = rest.split_at_mut(sizes.hb);
        let (post, rest) = rest.split_at_mut(sizes.post);
        let (logits, _) = rest.split_at_mut(sizes.logits);
        Ok(SharedState {
            cfg,
            rope: &*rope,
            k: SharedBuf::new(k),
            v: SharedBuf::new(v),
            k_layer: sizes.k_layer,
            v_layer: sizes.v_layer,
            row_bytes: sizes.row_bytes,
            part: SharedBuf::new(part),
            x: SharedBuf::new(x),
            q: SharedBuf::new(q),
            att: SharedBuf::new(att),
            hb: SharedBuf::new(hb),
            post: SharedBuf::new(post),
            logits: SharedBuf::new(logits),
            control: Control { token: AtomicU32::new(0), generated: AtomicU32::new(0), stop: AtomicU8::new(0) },
            sizes,
            n_layers: mc.n_layers,
            team_running: AtomicBool::new(false),
        })
    }

    /// Whether this state was sized for a model with `model`'s dimensions.
    pub fn fits(&self, model: &ModelConfig) -> bool {
        model.n_layers == self.n_layers && Sizes::new(model, &self.cfg) == Some(self.sizes)
    }

    pub fn config(&self) -> &StateConfig {
        &self.cfg
    }

    /// The logits of the last forward call: `rows` rows of `n_vocab` (row `k`
    /// is the `k`-th token that asked for logits). Exclusive: no team running.
    pub fn logits(&mut self) -> &mut [f32] {
        self.logits.as_mut_slice()
    }

    /// The token the leader published last (see [`generate`](fn@crate::forward::generate)).
    pub fn published_token(&self) -> u32 {
        self.control.token.load(Ordering::Relaxed)
    }
}

/// The RoPE tables: `model.config.rope`'s, then `rope_local`'s if any
/// (the sliding-window layers', which take no frequency factors).
fn fill_rope_tables(model: &Model<'_>, n_ctx: usize, tables: &mut [f32]) {
    let c = &model.config;
    let (global, local) = tables.split_at_mut(n_ctx * c.rope.n_rot);
    fill_rope_table(&c.rope, model.globals.rope_freqs, n_ctx, global);
    if let Some(rope) = &c.rope_local {
        fill_rope_table(rope, None, n_ctx, local);
    }
}

/// RoPE angles as llama.cpp computes them (ggml_rope_cache_init): per
/// position `p`, `theta_i = p * base^(-2i/n_rot)` by repeated f32
/// multiplication, divided by the frequency factor (Llama 3), times the
/// linear scale; then `cos`, `sin` with libm.
fn fill_rope_table(rope: &crate::model::RopeConfig, factors: Option<crate::model::F32Vector<'_>>, n_ctx: usize, table: &mut [f32]) {
    let half = rope.n_rot / 2;
    let theta_scale = libm::powf(rope.freq_base, -2.0 / rope.n_rot as f32);
    for (p, row) in table.chunks_exact_mut(rope.n_rot).enumerate().take(n_ctx) {
        let mut theta = p as f32;
        let mut ff = factors.map(|f| f.iter());
        for i in 0..half {
            let factor = ff.as_mut().and_then(|it| it.next()).unwrap_or(1.0);
            let angle = rope.freq_scale * (theta / factor);
            row[2 * i] = libm::cosf(angle);
            row[2 * i + 1] = libm::sinf(angle);
            theta *= theta_scale;
        }
    }
}

/// One worker's private buffers, allocated once.
pub struct Scratch {
    /// Normalized inputs, `[token][n_embd]`.
    pub(crate) xb: Vec<f32>,
    /// Quantized activations for the next matmuls.
    pub(crate) acts: ActBuf,
    /// Matmul output chunks, `[token][MATMUL_CHUNK_ROWS]`, twice (gate, up).
    pub(crate) mm: Vec<f32>,
    pub(crate) mm2: Vec<f32>,
    /// New keys and values before RoPE and the cache store, `[token][kv_dim]`.
    pub(crate) kstage: Vec<f32>,
    pub(crate) vstage: Vec<f32>,
    /// One chunk of keys decoded to f32, transposed (`[head_dim][position]`),
    /// and of values (`[position][head_dim]`); Q8_0 keys pass through
    /// `krows` (`[position][head_dim]`) on the way.
    pub(crate) ktile: Vec<f32>,
    pub(crate) vtile: Vec<f32>,
    pub(crate) krows: Vec<f32>,
    /// One query head's scores, then probabilities, over a chunk.
    pub(crate) probs: Vec<f32>,
    /// One chunk's partial for one head: max, sum, `head_dim` outputs.
    pub(crate) chunk: Vec<f32>,
    /// Running partials of a tile's queries: `[token][group head][max, sum, outputs]`.
    pub(crate) run: Vec<f32>,
}

impl Scratch {
    pub fn new(model: &ModelConfig, cfg: &StateConfig) -> Scratch {
        let max_cols = model.n_embd.max(model.q_dim()).max(model.n_ff);
        Scratch {
            xb: vec![0.0; cfg.max_batch * model.n_embd],
            acts: ActBuf::new(max_cols, cfg.max_batch),
            mm: vec![0.0; cfg.max_batch * MATMUL_CHUNK_ROWS],
            mm2: vec![0.0; cfg.max_batch * MATMUL_CHUNK_ROWS],
            kstage: vec![0.0; cfg.max_batch * model.kv_dim()],
            vstage: vec![0.0; cfg.max_batch * model.kv_dim()],
            ktile: vec![0.0; ATTN_CHUNK * model.head_dim],
            vtile: vec![0.0; ATTN_CHUNK * model.head_dim],
            krows: vec![0.0; ATTN_CHUNK * model.head_dim],
            probs: vec![0.0; ATTN_CHUNK],
            chunk: vec![0.0; model.head_dim + 2],
            run: vec![0.0; ATTN_QUERY_BLOCK * model.gqa_group() * (model.head_dim + 2)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Arch, RopeConfig, RopeLayout};

    /// SmolLM2-135M's shape: 30 layers, 9 heads of 64, 3 K/V heads.
    fn smollm2() -> ModelConfig {
        ModelConfig {
            arch: Arch::Llama,
            n_layers: 30,
            n_embd: 576,
            n_ff: 1536,
            n_heads: 9,
            n_kv_heads: 3,
            head_dim: 64,
            n_vocab: 49152,
            n_ctx_train: 8192,
            rms_eps: 1e-5,
            attn_scale: 0.125,
            rope: RopeConfig { layout: RopeLayout::Adjacent, n_rot: 64, freq_base: 100_000.0, freq_scale: 1.0 },
            rope_local: None,
            tied_output: true,
            embd_scale: 1.0,
            qk_norm: false,
            post_norms: false,
            ffn_act: crate::model::FfnActivation::Silu,
            sliding_window: None,
        }
    }

    #[test]
    fn kv_bytes_are_one_k_and_one_v_slab_per_layer() {
        let model = smollm2();
        for (kv_type, row) in [(KvType::F32, 256usize), (KvType::F16, 128), (KvType::Q8_0, 68)] {
            for (n_ctx, max_batch) in [(1usize, 1usize), (7, 4), (2048, 64), (8192, 64)] {
                let cfg = StateConfig { n_ctx, max_batch, logit_rows: 1, kv_type };
                let b = StateBytes::new(&model, &cfg).unwrap();
                // 3 kv heads of one row per position, each slab rounded to 64
                // bytes; transposed keys take whole chunks of 128 positions.
                let k_positions = if kv_type == KvType::Q8_0 { n_ctx } else { n_ctx.next_multiple_of(128) };
                let want = (k_positions * 3 * row).next_multiple_of(64) + (n_ctx * 3 * row).next_multiple_of(64);
                assert_eq!(b.kv_per_layer, want, "{kv_type} n_ctx {n_ctx}");
                assert_eq!((b.layers, b.kv, b.kv_per_token), (30, 30 * b.kv_per_layer, 30 * 2 * 3 * row));
                // The rest: RoPE table, attention partials, x, q, att, hb, one logits row.
                let other = n_ctx * 64 + 9 * n_ctx.div_ceil(ATTN_CHUNK) * 66 + max_batch * (576 + 2 * 576 + 1536) + 49152;
                assert_eq!(b.other, other * 4);
                assert_eq!(SharedState::floats_needed(&model, &cfg), Some(b.total() / 4));
            }
        }
        // At 2048 positions: 94 MB of f32 KV cache, 47 MB of f16, 25 MB of Q8_0.
        let kv = |kv_type| StateBytes::new(&model, &StateConfig { n_ctx: 2048, max_batch: 64, logit_rows: 1, kv_type }).unwrap().kv;
        assert_eq!([kv(KvType::F32), kv(KvType::F16), kv(KvType::Q8_0)], [94_371_840, 47_185_920, 25_067_520]);
    }

    #[test]
    fn q8_0_needs_heads_of_whole_blocks() {
        let odd = ModelConfig { head_dim: 80, ..smollm2() };
        let cfg = StateConfig { n_ctx: 16, max_batch: 1, logit_rows: 1, kv_type: KvType::Q8_0 };
        assert_eq!(StateBytes::new(&odd, &cfg), None);
        assert!(StateBytes::new(&odd, &StateConfig { kv_type: KvType::F16, ..cfg }).is_some());
    }

    #[test]
    fn sizes_that_overflow_are_none() {
        let model = smollm2();
        let huge = StateConfig { n_ctx: usize::MAX / 8, max_batch: 1, logit_rows: 1, kv_type: KvType::F32 };
        assert_eq!(StateBytes::new(&model, &huge), None);
        assert_eq!(SharedState::floats_needed(&model, &huge), None);
        let wide = ModelConfig { n_layers: usize::MAX / 2, ..smollm2() };
        assert_eq!(StateBytes::new(&wide, &StateConfig { n_ctx: 16, max_batch: 1, logit_rows: 1, kv_type: KvType::F32 }), None);
    }
}
