//! Errors of the GGUF reader and of model validation.
//!
//! One typed enum for everything that can be wrong with a model file, from a
//! short read to a tensor of the wrong shape, so the kernel and the host print
//! the same clear message and stop.

use alloc::string::String;
use core::fmt;

use crate::ggml_type::GgmlType;

/// Why a GGUF file (or the model it holds) was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GgufError {
    /// [`Gguf::parse_header`](super::Gguf::parse_header) needs a longer prefix:
    /// read at least `bytes` bytes from the start of the file and retry.
    NeedMore { bytes: u64 },
    /// The file ends before an item it declares.
    Truncated { what: &'static str, at: u64, needed: u64, file_size: u64 },
    /// The first four bytes are not `GGUF`.
    BadMagic { found: [u8; 4] },
    /// A GGUF version other than 2 or 3.
    UnsupportedVersion { version: u32 },
    /// A count that cannot fit in the file (or exceeds a sane limit).
    AbsurdCount { what: &'static str, count: u64, limit: u64 },
    /// A key or tensor name that is not UTF-8.
    InvalidUtf8 { what: &'static str, at: u64 },
    /// A metadata value type id outside the GGUF specification.
    UnknownValueType { key: String, id: u32 },
    /// An array whose elements are arrays (no model uses them; rejected).
    NestedArray { key: String },
    DuplicateKey { key: String },
    DuplicateTensor { name: String },
    /// `general.alignment` that is not a power of two in 1..=1 GiB.
    BadAlignment { value: u64 },
    /// A tensor type id that no GGML version defines.
    UnknownTensorType { tensor: String, id: u32 },
    /// A known GGML type this engine has no kernels for.
    UnsupportedTensorType { tensor: String, ty: GgmlType },
    /// A tensor whose dimensions are impossible (0 or > 4 dims, a zero or
    /// overflowing extent).
    BadTensorShape { tensor: String, reason: &'static str },
    /// A tensor whose rows (`ne[0]` elements) are not a whole number of its
    /// type's blocks (e.g. a K-quant row that is not a multiple of 256).
    RaggedTensorRow { tensor: String, ty: GgmlType, row: u64 },
    /// Tensor data that is not aligned to `general.alignment`.
    MisalignedTensor { tensor: String, offset: u64, alignment: u64 },
    /// Tensor data that runs past the end of the file.
    TensorOutOfBounds { tensor: String, start: u64, end: u64, file_size: u64 },
    /// Two tensors whose data ranges overlap.
    TensorOverlap { first: String, second: String },
    // ---- model validation (ModelConfig / layouts) ----
    MissingKey { key: String },
    /// A metadata value of the wrong type, or one that does not fit its use.
    BadMetadata { key: String, reason: &'static str },
    UnsupportedArchitecture { arch: String },
    /// A model feature this engine does not implement (e.g. YaRN RoPE scaling).
    UnsupportedFeature { what: String },
    MissingTensor { name: String },
    /// A tensor the model's architecture needs (e.g. Gemma 3's post-norms).
    MissingArchTensor { arch: &'static str, name: String },
    ShapeMismatch { tensor: String, expected: [u64; 4], expected_dims: u8, found: [u64; 4], found_dims: u8 },
    /// Layer bytes handed to a layout that do not match its extent.
    ExtentMismatch { what: &'static str, expected: u64, found: u64 },
}

fn write_shape(f: &mut fmt::Formatter<'_>, dims: &[u64; 4], n: u8) -> fmt::Result {
    f.write_str("[")?;
    for (i, d) in dims.iter().take(n as usize).enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{d}")?;
    }
    f.write_str("]")
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use GgufError::*;
        match self {
            NeedMore { bytes } => write!(f, "GGUF header continues past the bytes read so far: read the first {bytes} bytes and retry"),
            Truncated { what, at, needed, file_size } => write!(
                f,
                "truncated GGUF file: {what} at byte {at} needs {needed} bytes, but the file ends at byte {file_size}"
            ),
            BadMagic { found } => {
                if found == b"GGML" || found == b"GGJT" || found == b"GGMF" || found == b"lmgg" || found == b"tjgg" {
                    write!(f, "not a GGUF file: it is an old pre-GGUF ggml model ({:?}); convert it to GGUF first", core::str::from_utf8(found).unwrap_or("?"))
                } else {
                    write!(f, "not a GGUF file: bad magic {:02x} {:02x} {:02x} {:02x} (expected \"GGUF\")", found[0], found[1], found[2], found[3])
                }
            }
            UnsupportedVersion { version } => write!(f, "unsupported GGUF version {version} (this reader supports versions 2 and 3)"),
            AbsurdCount { what, count, limit } => {
                write!(f, "corrupt or truncated GGUF file: {what} is {count}, more than the rest of the file can hold (at most {limit})")
            }
            InvalidUtf8 { what, at } => write!(f, "corrupt GGUF file: {what} at byte {at} is not valid UTF-8"),
            UnknownValueType { key, id } => write!(f, "corrupt GGUF file: metadata key {key:?} has unknown value type {id}"),
            NestedArray { key } => write!(f, "unsupported GGUF metadata: key {key:?} is an array of arrays"),
            DuplicateKey { key } => write!(f, "corrupt GGUF file: duplicate metadata key {key:?}"),
            DuplicateTensor { name } => write!(f, "corrupt GGUF file: duplicate tensor name {name:?}"),
            BadAlignment { value } => write!(f, "corrupt GGUF file: general.alignment = {value} is not a power of two between 1 and 2^30"),
            UnknownTensorType { tensor, id } => write!(f, "corrupt GGUF file: tensor {tensor:?} has unknown type id {id}"),
            UnsupportedTensorType { tensor, ty } => write!(
                f,
                "unsupported type {ty} in tensor {tensor}; convert with `cargo axiom pack --type q4_0|q4_1|q8_0` (supported: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl, q2_K, q3_K, q4_K, q5_K, q6_K)"
            ),
            BadTensorShape { tensor, reason } => write!(f, "corrupt GGUF file: tensor {tensor:?} has a bad shape: {reason}"),
            RaggedTensorRow { tensor, ty, row } => write!(
                f,
                "corrupt GGUF file: tensor {tensor:?} has rows of {row} elements, which is not a whole number of {ty} blocks of {}",
                ty.block_elems()
            ),
            MisalignedTensor { tensor, offset, alignment } => write!(
                f,
                "corrupt GGUF file: tensor {tensor:?} data offset {offset} is not a multiple of the alignment {alignment}"
            ),
            TensorOutOfBounds { tensor, start, end, file_size } => write!(
                f,
                "truncated GGUF file: tensor {tensor:?} occupies bytes {start}..{end}, but the file ends at byte {file_size}"
            ),
            TensorOverlap { first, second } => write!(f, "corrupt GGUF file: the data of tensors {first:?} and {second:?} overlap"),
            MissingKey { key } => write!(f, "model metadata lacks the key {key:?}"),
            BadMetadata { key, reason } => write!(f, "bad model metadata {key:?}: {reason}"),
            UnsupportedArchitecture { arch } => write!(
                f,
                "unsupported model architecture {arch:?} (supported: {})",
                crate::model::Arch::SUPPORTED
            ),
            UnsupportedFeature { what } => write!(f, "unsupported model feature: {what}"),
            MissingTensor { name } => write!(f, "model lacks the tensor {name:?}"),
            MissingArchTensor { arch, name } => write!(f, "model architecture {arch:?} needs the tensor {name:?}, which the file lacks"),
            ShapeMismatch { tensor, expected, expected_dims, found, found_dims } => {
                write!(f, "tensor {tensor:?} has shape ")?;
                write_shape(f, found, *found_dims)?;
                f.write_str(" but the model's hyper-parameters need ")?;
                write_shape(f, expected, *expected_dims)
            }
            ExtentMismatch { what, expected, found } => {
                write!(f, "{what}: expected {expected} bytes of weights, got {found}")
            }
        }
    }
}

impl core::error::Error for GgufError {}
