//! Matrix-times-activations kernels: the engine's hot path.
//!
//! A [`WeightMatrix`] is a view of a GGUF tensor in ggml's row-major layout
//! (row `r` is [`WeightMatrix::row_bytes`] bytes at `r * row_bytes`; `cols` is
//! ggml's `ne[0]`). Activations are first quantized into an [`ActBuf`] the way
//! ggml's CPU backend does for the weight type (Q8_0 for Q4_0/Q8_0 weights,
//! Q8_1 for Q4_1, f16-rounded floats for F16, plain floats for F32), then
//! [`Kernels::matmul`] computes any range of output rows for every token of the
//! batch. [`Kernels`] is chosen once at start-up ([`Kernels::detect`]) and is a
//! plain `Copy` value the compute threads share.
//!
//! # Exact arithmetic, on every ISA
//!
//! Every path (scalar, AVX2, AVX-512, AVX-512 VNNI) computes each output with
//! the same sequence of IEEE operations, so results are **bit-identical across
//! ISAs, batch sizes, row ranges and thread counts**. The tests check
//! this with `==` on random data, not with a tolerance. For output row `r` and
//! token `t`, with blocks `b` of 32 columns:
//!
//! - Q4_0, Q8_0 (activations Q8_0): `isum_b` = the exact integer dot product of
//!   the block's quants (Q4_0 nibbles minus 8), then in block order
//!   `acc = fma(dw_b * da_b, isum_b as f32, acc)`; the output is `acc`.
//! - Q4_1 (activations Q8_1): `isum_b` over the unsigned nibbles,
//!   `acc = fma(dw_b * da_b, isum_b as f32, acc)` and
//!   `macc = fma(mw_b, sa_b, macc)`; the output is `acc + macc`.
//! - F32, F16: see [`vector::dot_f32`] (8 lanes x 4 accumulators, fixed reduction).
//!
//! `dw`, `mw` are the weight block's f16 scale/min, `da` the activation block's
//! f16 scale and `sa` Q8_1's f16 `d * sum(q)`, all widened to f32. The integer
//! parts equal ggml's exactly; only the float summation order differs from
//! ggml's (which sums 8 lanes per block, then reduces), so outputs agree with
//! llama.cpp to float rounding, not bit for bit.

pub mod packed;
mod packed_driver;
mod packed_kquants;
mod scalar;
pub mod vector;

// The SIMD kernels: intrinsics on raw pointers, behind capability values
// that only exist once CPUID and XGETBV reported the instructions.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2_kquants;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2_packed;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2_packed_kquants;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod attn_simd;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use crate::cpu::CpuFeatures;
use crate::ggml_type::GgmlType;
use crate::quant::activation::{quantize_block_q8, quantize_block_q8_k, QK_K};
use crate::quant::{dequantize_row, round_f16, QuantError, QK};
use crate::state::KvType;

pub use packed::{pack_into, packed_bytes, PackedMatrix, PackedView, GROUP_ROWS};

/// How far ahead (bytes) the SIMD kernels prefetch the weight stream.
static PREFETCH_DIST: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(DEFAULT_PREFETCH_DISTANCE);

/// Default software prefetch distance: 8 KiB ahead of the weights being
/// multiplied. On the development host (AMD EPYC, Zen 1) it cut decode matmul
/// time by about a third; 4-16 KiB performed alike, 0-1 KiB was much slower.
pub const DEFAULT_PREFETCH_DISTANCE: usize = 8192;

/// Sets the software prefetch distance in bytes for every SIMD kernel (0
/// disables prefetching). Global: meant for start-up tuning and benchmarks.
pub fn set_prefetch_distance(bytes: usize) {
    PREFETCH_DIST.store(bytes, core::sync::atomic::Ordering::Relaxed);
}

/// The current software prefetch distance in bytes.
pub fn prefetch_distance() -> usize {
    PREFETCH_DIST.load(core::sync::atomic::Ordering::Relaxed)
}

/// An instruction-set path for the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, the reference every other path is tested against.
    Scalar,
    /// AVX2 + FMA + F16C (256-bit).
    Avx2,
    /// AVX-512 F/BW/VL (512-bit integer dot products).
    Avx512,
    /// AVX-512 with VNNI (`vpdpbusd`).
    Avx512Vnni,
}

impl Isa {
    /// Every path, slowest first.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni];

    /// Short lower-case name (`scalar`, `avx2`, `avx512`, `avx512vnni`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Avx512Vnni => "avx512vnni",
        }
    }

    /// Parses [`Isa::name`].
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.iter().copied().find(|i| i.name() == name)
    }

    /// Whether this CPU can run the path.
    pub fn is_available(self, cpu: &CpuFeatures) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => cfg!(target_arch = "x86_64") && cpu.has_avx2_path(),
            Isa::Avx512 => cfg!(target_arch = "x86_64") && cpu.has_avx512_path(),
            Isa::Avx512Vnni => cfg!(target_arch = "x86_64") && cpu.has_avx512_vnni_path(),
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors from choosing kernels or describing a weight matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// The CPU (or the OS's XCR0) does not support the requested path.
    IsaUnavailable(Isa),
    /// The weight type has no kernel.
    UnsupportedType(GgmlType),
    /// `cols` is not a whole number of the type's blocks.
    RaggedRow { ty: GgmlType, cols: usize },
    /// `data` is shorter than `rows` rows.
    ShortData { needed: usize, got: usize },
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::IsaUnavailable(isa) => write!(f, "this CPU cannot run the {isa} kernels"),
            Self::UnsupportedType(ty) => write!(
                f,
                "no matmul kernel for tensor type {ty}; convert with `cargo axiom pack --type q4_0|q4_1|q8_0`"
            ),
            Self::RaggedRow { ty, cols } => {
                write!(f, "{cols} columns is not a whole number of {ty} blocks")
            }
            Self::ShortData { needed, got } => {
                write!(f, "weight matrix needs {needed} bytes, got {got}")
            }
        }
    }
}

/// A weight matrix in ggml's layout: `rows` rows of `cols` elements of type `ty`.
#[derive(Clone, Copy, Debug)]
pub struct WeightMatrix<'a> {
    /// Element type (F32, F16, Q4_0, Q4_1 or Q8_0).
    pub ty: GgmlType,
    /// Output dimension (ggml's `ne[1]`).
    pub rows: usize,
    /// Input dimension (ggml's `ne[0]`), a multiple of the block size.
    pub cols: usize,
    /// At least `rows * row_bytes()` bytes; extra bytes are ignored.
    pub data: &'a [u8],
}

impl<'a> WeightMatrix<'a> {
    /// Checks the type, the shape and the data length, then builds the view.
    pub fn new(ty: GgmlType, rows: usize, cols: usize, data: &'a [u8]) -> Result<Self, KernelError> {
        if !ty.is_supported() {
            return Err(KernelError::UnsupportedType(ty));
        }
        let row_bytes = ty.row_bytes(cols as u64).ok_or(KernelError::RaggedRow { ty, cols })? as usize;
        let needed = row_bytes.checked_mul(rows).ok_or(KernelError::ShortData {
            needed: usize::MAX,
            got: data.len(),
        })?;
        if data.len() < needed {
            return Err(KernelError::ShortData {
                needed,
                got: data.len(),
            });
        }
        Ok(Self { ty, rows, cols, data })
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.cols / self.ty.block_elems() * self.ty.block_bytes()
    }

    /// The bytes of row `r`.
    pub fn row(&self, r: usize) -> &'a [u8] {
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }

    /// Re-checks what [`WeightMatrix::new`] checks (the fields are public).
    fn validate(&self) {
        if let Err(e) = Self::new(self.ty, self.rows, self.cols, self.data) {
            panic!("invalid weight matrix ({} x {} {}): {e}", self.rows, self.cols, self.ty);
        }
    }
}

/// A weight matrix in either layout: ggml's, straight from the model file,
/// or [`packed`] at load time. Both give bit-identical results.
#[derive(Clone, Copy, Debug)]
pub enum Matrix<'a> {
    /// ggml's row-major block layout.
    Ggml(WeightMatrix<'a>),
    /// Row-interleaved layout (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q8_0, Q4_K, Q6_K only).
    Packed(PackedView<'a>),
}

impl Matrix<'_> {
    /// Element type.
    pub fn ty(&self) -> GgmlType {
        match self {
            Matrix::Ggml(w) => w.ty,
            Matrix::Packed(p) => p.ty(),
        }
    }

    /// Output dimension.
    pub fn rows(&self) -> usize {
        match self {
            Matrix::Ggml(w) => w.rows,
            Matrix::Packed(p) => p.rows(),
        }
    }

    /// Input dimension.
    pub fn cols(&self) -> usize {
        match self {
            Matrix::Ggml(w) => w.cols,
            Matrix::Packed(p) => p.cols(),
        }
    }
}

impl Matrix<'_> {
    /// Row `r` as floats (ggml's `to_float`), in either layout; `out` holds
    /// `cols()` values. Panics if `r` is not a row (or, packed, `out` is not
    /// `cols()` long).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<(), QuantError> {
        match self {
            Matrix::Ggml(w) => dequantize_row(w.ty, w.row(r), out),
            Matrix::Packed(p) if packed_kquants::has_layout(p.ty()) => {
                assert!(r < p.rows() && out.len() == p.cols(), "row {r} of {} into {} values", p.rows(), out.len());
                let bytes = p.ty().block_bytes();
                let mut block = [0u8; packed_kquants::MAX_SUPER_BYTES];
                for (sb, values) in out.chunks_mut(p.ty().block_elems()).enumerate() {
                    packed_kquants::read_super(p, r, sb, &mut block);
                    dequantize_row(p.ty(), &block[..bytes], values)?;
                }
                Ok(())
            }
            Matrix::Packed(p) => {
                assert!(r < p.rows() && out.len() == p.cols(), "row {r} of {} into {} values", p.rows(), out.len());
                let bytes = p.ty().block_bytes();
                let mut block = [0u8; packed::MAX_BLOCK_BYTES];
                for (b, values) in out.chunks_mut(QK).enumerate() {
                    packed::read_block(p, r, b, &mut block);
                    dequantize_row(p.ty(), &block[..bytes], values)?;
                }
                Ok(())
            }
        }
    }
}

impl<'a> From<WeightMatrix<'a>> for Matrix<'a> {
    fn from(w: WeightMatrix<'a>) -> Self {
        Matrix::Ggml(w)
    }
}

impl<'a> From<&WeightMatrix<'a>> for Matrix<'a> {
    fn from(w: &WeightMatrix<'a>) -> Self {
        Matrix::Ggml(*w)
    }
}

impl<'a> From<PackedView<'a>> for Matrix<'a> {
    fn from(p: PackedView<'a>) -> Self {
        Matrix::Packed(p)
    }
}

impl<'a> From<&'a PackedMatrix> for Matrix<'a> {
    fn from(p: &'a PackedMatrix) -> Self {
        Matrix::Packed(p.view())
    }
}

/// What an [`ActBuf`] currently holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActKind {
    /// Nothing quantized yet.
    Empty,
    /// Plain f32 (for F32 weights).
    F32,
    /// f32 values rounded through f16 (for F16 weights, as ggml does).
    F16,
    /// f32 values rounded through bf16 (for BF16 weights, as ggml does).
    BF16,
    /// Q8_0 blocks (for Q4_0, Q5_0, Q8_0, IQ4_NL and K-quant weights).
    Q8_0,
    /// Q8_K blocks of 256 (for the K-quants, as ggml pairs them).
    #[allow(non_camel_case_types)]
    Q8_K,
    /// Q8_1 blocks (for Q4_1 and Q5_1 weights).
    Q8_1,
}

impl ActKind {
    /// The activation form ggml pairs with weights of type `ty` (`vec_dot_type`).
    pub fn for_weights(ty: GgmlType) -> Option<ActKind> {
        match ty {
            GgmlType::F32 => Some(ActKind::F32),
            GgmlType::F16 => Some(ActKind::F16),
            GgmlType::BF16 => Some(ActKind::BF16),
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 | GgmlType::IQ4_NL => Some(ActKind::Q8_0),
            // The K-quants take per-256 Q8_K activations, as in ggml.
            GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => Some(ActKind::Q8_K),
            GgmlType::Q4_1 | GgmlType::Q5_1 => Some(ActKind::Q8_1),
            _ => None,
        }
    }
}

/// Quantized activations for up to `max_batch` tokens of up to `max_cols`
/// columns. Allocated once, reused by every matmul; quantizing allocates nothing.
///
/// Layout (token `t`, block `b`, `nb = cols / 32`): quants `qs[t * cols + i]`,
/// per block `d[t * nb + b]` (f16-rounded scale as f32), `s[..]` (Q8_1's
/// f16-rounded `d * sum`), `sum[..]` (exact sum of the quants); floats
/// `f[t * cols + i]` for F32/F16 weights.
#[derive(Clone, Debug)]
pub struct ActBuf {
    kind: ActKind,
    cols: usize,
    batch: usize,
    max_cols: usize,
    max_batch: usize,
    qs: Vec<i8>,
    d: Vec<f32>,
    s: Vec<f32>,
    sum: Vec<i32>,
    f: Vec<f32>,
    /// Q8_K: per 256-column block, the f32 scale and the 16 sums of 16 quants.
    dk: Vec<f32>,
    bsums: Vec<i32>,
}

impl ActBuf {
    /// A buffer for up to `max_batch` tokens of up to `max_cols` columns.
    pub fn new(max_cols: usize, max_batch: usize) -> ActBuf {
        let n = max_cols * max_batch;
        let nb = max_cols.div_ceil(QK) * max_batch;
        ActBuf {
            kind: ActKind::Empty,
            cols: 0,
            batch: 0,
            max_cols,
            max_batch,
            qs: vec![0; n],
            d: vec![0.0; nb],
            s: vec![0.0; nb],
            sum: vec![0; nb],
            f: vec![0.0; n],
            dk: vec![0.0; max_cols.div_ceil(QK_K) * max_batch],
            bsums: vec![0; max_cols.div_ceil(QK_K) * 16 * max_batch],
        }
    }

    /// What the buffer holds now.
    pub fn kind(&self) -> ActKind {
        self.kind
    }

    /// Columns per token of the current contents.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Tokens in the current contents.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Capacity in columns.
    pub fn max_cols(&self) -> usize {
        self.max_cols
    }

    /// Capacity in tokens.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    pub(crate) fn blocks(&self) -> usize {
        self.cols / QK
    }

    /// Quants of token `t` (Q8 kinds).
    fn qs(&self, t: usize) -> &[i8] {
        &self.qs[t * self.cols..(t + 1) * self.cols]
    }

    /// Per-block f16-rounded scales of token `t`.
    fn d(&self, t: usize) -> &[f32] {
        let nb = self.blocks();
        &self.d[t * nb..(t + 1) * nb]
    }

    /// Per-block Q8_1 `s` of token `t`.
    fn s(&self, t: usize) -> &[f32] {
        let nb = self.blocks();
        &self.s[t * nb..(t + 1) * nb]
    }

    /// Per-block exact quant sums of token `t`.
    fn sum(&self, t: usize) -> &[i32] {
        let nb = self.blocks();
        &self.sum[t * nb..(t + 1) * nb]
    }

    /// Q8_K scales of token `t`, one per 256 columns.
    fn dk(&self, t: usize) -> &[f32] {
        let n = self.cols / QK_K;
        &self.dk[t * n..(t + 1) * n]
    }

    /// Q8_K sums of 16 quants of token `t`, 16 per 256 columns.
    fn bsums(&self, t: usize) -> &[i32] {
        let n = self.cols / QK_K * 16;
        &self.bsums[t * n..(t + 1) * n]
    }

    /// Floats of token `t` (F32/F16 kinds).
    fn f(&self, t: usize) -> &[f32] {
        &self.f[t * self.cols..(t + 1) * self.cols]
    }

    /// The quantized block `b` of token `t` in ggml's Q8_0 layout (tests, tools).
    pub fn q8_block(&self, t: usize, b: usize) -> (f32, &[i8]) {
        (self.d(t)[b], &self.qs(t)[b * QK..(b + 1) * QK])
    }
}

/// The kernel set for one ISA. `Copy`; choose once and share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    path: Path,
}

/// An ISA path with the capability values that prove the CPU can run it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(avx2::Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512(avx2::Avx2, avx512::Avx512),
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni(avx2::Avx2, avx512::Avx512Vnni),
}

impl Path {
    #[cfg(target_arch = "x86_64")]
    fn detect(isa: Isa) -> Option<Path> {
        match isa {
            Isa::Scalar => Some(Path::Scalar),
            Isa::Avx2 => avx2::Avx2::detect().map(Path::Avx2),
            Isa::Avx512 => Some(Path::Avx512(avx2::Avx2::detect()?, avx512::Avx512::detect()?)),
            Isa::Avx512Vnni => Some(Path::Avx512Vnni(avx2::Avx2::detect()?, avx512::Avx512Vnni::detect()?)),
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn detect(isa: Isa) -> Option<Path> {
        (isa == Isa::Scalar).then_some(Path::Scalar)
    }

    /// The AVX2 set, on every SIMD path (used for everything but packed matmuls).
    #[cfg(target_arch = "x86_64")]
    fn avx2(self) -> Option<avx2::Avx2> {
        match self {
            Path::Scalar => None,
            Path::Avx2(a) | Path::Avx512(a, _) | Path::Avx512Vnni(a, _) => Some(a),
        }
    }
}

impl Kernels {
    /// The fastest path this CPU supports (by CPUID + XGETBV).
    pub fn detect() -> Kernels {
        let path = Isa::ALL.iter().rev().find_map(|&isa| Path::detect(isa)).unwrap_or(Path::Scalar);
        Kernels { path }
    }

    /// The given path, or an error if this CPU cannot run it (tests and
    /// `--isa` use this to force a path).
    pub fn for_isa(isa: Isa) -> Result<Kernels, KernelError> {
        Path::detect(isa).map(|path| Kernels { path }).ok_or(KernelError::IsaUnavailable(isa))
    }

    /// The path in use.
    pub fn isa(&self) -> Isa {
        match self.path {
            Path::Scalar => Isa::Scalar,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2(_) => Isa::Avx2,
            #[cfg(target_arch = "x86_64")]
            Path::Avx512(..) => Isa::Avx512,
            #[cfg(target_arch = "x86_64")]
            Path::Avx512Vnni(..) => Isa::Avx512Vnni,
        }
    }

    /// Runs `f`, compiled for the vector instructions of this path when it
    /// has them (AVX2), so the plain loops in it vectorize. For element-wise
    /// code written with a fixed operation order, which then gives the same
    /// bits on every path.
    #[inline]
    pub fn vectorized<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = self.path.avx2() {
            return simd.vectorized(f);
        }
        f()
    }

    /// Prepares `batch` tokens of activations `x` (`batch` rows of
    /// `x.len() / batch` floats, token-major) for weights of type `weight_ty`.
    ///
    /// Panics if the shape exceeds `out`'s capacity, `x.len()` is not
    /// `batch * cols`, a quantized type's `cols` is not a multiple of 32, or
    /// the weight type has no kernel: all programming errors, since shapes come
    /// from a validated model.
    pub fn quantize_activations(&self, weight_ty: GgmlType, x: &[f32], batch: usize, out: &mut ActBuf) {
        let kind =
            ActKind::for_weights(weight_ty).unwrap_or_else(|| panic!("no matmul kernel for weight type {weight_ty}"));
        assert!(
            batch >= 1 && batch <= out.max_batch,
            "batch {batch} exceeds ActBuf capacity {}",
            out.max_batch
        );
        assert!(
            x.len().is_multiple_of(batch),
            "{} activations do not split into {batch} tokens",
            x.len()
        );
        let cols = x.len() / batch;
        assert!(
            cols <= out.max_cols,
            "{cols} columns exceed ActBuf capacity {}",
            out.max_cols
        );
        out.kind = kind;
        out.cols = cols;
        out.batch = batch;
        match kind {
            ActKind::F32 => out.f[..x.len()].copy_from_slice(x),
            ActKind::F16 => {
                for (o, &v) in out.f.iter_mut().zip(x) {
                    *o = round_f16(v);
                }
            }
            ActKind::BF16 => {
                for (o, &v) in out.f.iter_mut().zip(x) {
                    *o = crate::quant::kquants::round_bf16(v);
                }
            }
            ActKind::Q8_K => {
                assert!(cols.is_multiple_of(QK_K), "{cols} columns is not a whole number of super-blocks");
                let nk = cols / QK_K;
                for (k, xb) in x.chunks_exact(QK_K).enumerate() {
                    let q = quantize_block_q8_k(xb.try_into().unwrap());
                    out.qs[k * QK_K..(k + 1) * QK_K].copy_from_slice(&q.qs);
                    out.dk[k] = q.d;
                    out.bsums[16 * k..16 * (k + 1)].copy_from_slice(&q.bsums);
                }
                let _ = nk;
            }
            ActKind::Q8_0 | ActKind::Q8_1 => {
                assert!(cols.is_multiple_of(QK), "{cols} columns is not a whole number of blocks");
                self.quantize_q8(x, out);
            }
            ActKind::Empty => unreachable!(),
        }
    }

    fn quantize_q8(&self, x: &[f32], out: &mut ActBuf) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = self.path.avx2() {
            return simd.quantize_q8(x, out);
        }
        for (b, xb) in x.chunks_exact(QK).enumerate() {
            let q = quantize_block_q8(xb.try_into().unwrap());
            out.qs[b * QK..(b + 1) * QK].copy_from_slice(&q.qs);
            out.d[b] = round_f16(q.d);
            out.s[b] = round_f16(q.d * q.sum as f32);
            out.sum[b] = q.sum;
        }
    }

    /// `out[t * rows.len() + (r - rows.start)] = dot(row r of w, token t of acts)`
    /// for every `r` in `rows` and every token `t` of `acts`.
    ///
    /// `w` is a `&WeightMatrix` (ggml layout), a `&PackedMatrix` / `PackedView`
    /// or a [`Matrix`]. Any row range works; a row's value never depends on
    /// the range, the batch or the layout it is computed in. With packed
    /// weights, ranges aligned to [`GROUP_ROWS`] avoid computing rows twice.
    /// Panics if `acts` was not quantized for `w`'s type with `w.cols`
    /// columns, `rows` exceeds `w.rows`, or `out.len()` is not
    /// `acts.batch() * rows.len()`.
    pub fn matmul<'a>(&self, w: impl Into<Matrix<'a>>, acts: &ActBuf, rows: Range<usize>, out: &mut [f32]) {
        let w = w.into();
        check_shapes(&w, acts, &rows, out);
        if rows.is_empty() {
            return;
        }
        match (self.path, &w) {
            (path, Matrix::Packed(p)) if packed_kquants::has_layout(p.ty()) => packed_kquants::matmul(path, p, acts, rows, out),
            (Path::Scalar, Matrix::Ggml(g)) => scalar::matmul(g, acts, rows, out),
            (Path::Scalar, Matrix::Packed(p)) => scalar::matmul_packed(p, acts, rows, out),
            #[cfg(target_arch = "x86_64")]
            (Path::Avx2(simd), Matrix::Ggml(g)) => simd.matmul(g, acts, rows, out, avx2::Wide::No),
            #[cfg(target_arch = "x86_64")]
            (Path::Avx512(simd, w), Matrix::Ggml(g)) => simd.matmul(g, acts, rows, out, avx2::Wide::Avx512(w)),
            #[cfg(target_arch = "x86_64")]
            (Path::Avx512Vnni(simd, w), Matrix::Ggml(g)) => simd.matmul(g, acts, rows, out, avx2::Wide::Vnni(w)),
            #[cfg(target_arch = "x86_64")]
            (Path::Avx2(simd), Matrix::Packed(p)) => packed_driver::matmul_packed(simd, p, acts, rows, out),
            #[cfg(target_arch = "x86_64")]
            (Path::Avx512(_, simd), Matrix::Packed(p)) => packed_driver::matmul_packed(simd, p, acts, rows, out),
            #[cfg(target_arch = "x86_64")]
            (Path::Avx512Vnni(_, simd), Matrix::Packed(p)) => packed_driver::matmul_packed(simd, p, acts, rows, out),
        }
    }

    /// `sum(a[i] * b[i])` in the engine's fixed summation order (see
    /// [`vector::dot_f32`]); the same bits on every ISA. Panics if lengths differ.
    pub fn dot_f32(&self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = self.path.avx2() {
            return simd.dot_f32(a, b);
        }
        vector::dot_f32(a, b)
    }

    /// `y[i] = fma(a, x[i], y[i])` (one rounding per element). Panics if lengths differ.
    pub fn axpy(&self, y: &mut [f32], a: f32, x: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = self.path.avx2() {
            return simd.axpy(y, a, x);
        }
        vector::axpy(y, a, x)
    }

    /// `y[i] *= a`.
    pub fn scale(&self, y: &mut [f32], a: f32) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = self.path.avx2() {
            return simd.scale(y, a);
        }
        vector::scale(y, a)
    }

    /// `y[i] += x[i]`. Panics if lengths differ.
    pub fn add(&self, y: &mut [f32], x: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = self.path.avx2() {
            return simd.add(y, x);
        }
        vector::add(y, x)
    }

    /// Reads KV cache rows back to f32: `out.len()` values from `src`
    /// (exact, the same on every path: [`KvType::decode`]). Panics if `src`
    /// is too short or a Q8_0 `out` is not whole blocks.
    pub fn decode_kv(&self, kv: KvType, src: &[u8], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = attn_simd::AttnSimd::of(self.path) {
            return simd.decode_kv(kv, src, out);
        }
        kv.decode(src, out)
    }

    /// `out[j] = Σ_d q[d] · kt[d · stride + cols.start + j]`: one query
    /// against transposed keys, one `fma` chain per position
    /// ([`vector::dots_t`], the same bits on every path). Panics if `kt` is
    /// too short or `cols` does not fit `stride`.
    pub fn dots_t(&self, q: &[f32], kt: &[f32], stride: usize, cols: Range<usize>, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = attn_simd::AttnSimd::of(self.path) {
            return simd.dots_t(q, kt, stride, cols, out);
        }
        vector::dots_t(q, kt, stride, cols, out)
    }

    /// [`Self::dots_t`] reading f16 keys straight from the cache's bytes
    /// (the same bits as decoding them first).
    pub fn dots_t_f16(&self, q: &[f32], kt: &[u8], stride: usize, cols: Range<usize>, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = attn_simd::AttnSimd::of(self.path) {
            return simd.dots_t_f16(q, kt, stride, cols, out);
        }
        vector::dots_t_f16(q, kt, stride, cols, out)
    }

    /// [`Self::weighted_sum`] reading f16 values straight from the cache's
    /// bytes (the same bits as decoding them first).
    pub fn weighted_sum_f16(&self, probs: &[f32], rows: &[u8], out: &mut [f32]) {
        assert!(!out.is_empty() && rows.len() == probs.len() * out.len() * 2, "weighted_sum_f16: {} bytes for {} rows of {}", rows.len(), probs.len(), out.len());
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = attn_simd::AttnSimd::of(self.path) {
            return simd.weighted_sum_f16(probs, rows, out);
        }
        vector::weighted_sum_f16(probs, rows, out)
    }

    /// `out[d] = Σ_t probs[t] · rows[t][d]` ([`vector::weighted_sum`]'s
    /// `fma` chains, the same on every path). Panics on a length mismatch.
    pub fn weighted_sum(&self, probs: &[f32], rows: &[f32], out: &mut [f32]) {
        assert!(!out.is_empty() && rows.len() == probs.len() * out.len(), "weighted_sum: {} floats for {} rows of {}", rows.len(), probs.len(), out.len());
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = attn_simd::AttnSimd::of(self.path) {
            return simd.weighted_sum(probs, rows, out);
        }
        vector::weighted_sum(probs, rows, out)
    }

    /// `y[i] *= x[i]`. Panics if lengths differ.
    pub fn mul(&self, y: &mut [f32], x: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = self.path.avx2() {
            return simd.mul(y, x);
        }
        vector::mul(y, x)
    }
}

/// Checks `w`, `acts`, `rows` and `out` against each other (see
/// [`Kernels::matmul`]); the SIMD paths' raw loads rely on it.
fn check_shapes(w: &Matrix<'_>, acts: &ActBuf, rows: &Range<usize>, out: &[f32]) {
    if let Matrix::Ggml(g) = w {
        g.validate();
    }
    let (ty, n_rows, cols) = (w.ty(), w.rows(), w.cols());
    assert_eq!(Some(acts.kind), ActKind::for_weights(ty), "activations not quantized for {ty} weights");
    assert_eq!(acts.cols, cols, "activation width {} != weight columns {cols}", acts.cols);
    assert!(rows.start <= rows.end && rows.end <= n_rows, "rows {rows:?} out of 0..{n_rows}");
    assert_eq!(out.len(), acts.batch * rows.len(), "output length");
}

#[cfg(test)]
pub(crate) mod tests;
