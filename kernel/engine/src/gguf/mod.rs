//! GGUF reader (versions 2 and 3).
//!
//! The model file is untrusted input. Parsing checks every count, length,
//! offset, shape and type against the file size before it is used, and reports
//! a [`GgufError`] rather than panicking or reading out of bounds. Nothing is
//! copied: keys, strings, arrays and tensor data borrow from the input bytes.
//!
//! Two entry points:
//! - [`Gguf::parse`]: the whole file is in memory (the host maps it);
//! - [`Gguf::parse_header`]: only a prefix is in memory (the kernel reads the
//!   header from NVMe first). Tensor ranges are checked against `file_size`;
//!   a prefix that ends inside the header yields [`GgufError::NeedMore`].
//!
//! File layout: magic `GGUF`, u32 version, u64 tensor count, u64 metadata count,
//! metadata (key string, u32 type, value), tensor infos (name, u32 n_dims,
//! n_dims × u64 dims, u32 type, u64 offset), padding to `general.alignment`,
//! then the tensor data section.

mod cursor;
mod error;
mod meta;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::Range;

pub use error::GgufError;
pub use meta::{MetaArray, MetaArrayIter, MetaType, MetaValue};

use crate::ggml_type::GgmlType;
use cursor::Cursor;

/// Alignment of the data section and of every tensor when the file does not
/// set `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Tensors have at most this many dimensions (GGML_MAX_DIMS).
pub const MAX_DIMS: usize = 4;

/// A metadata key with its value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetaEntry<'a> {
    pub key: &'a str,
    pub value: MetaValue<'a>,
}

/// One entry of the tensor table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorInfo<'a> {
    pub name: &'a str,
    /// Number of used entries in `dims` (1..=4).
    pub n_dims: usize,
    /// ggml order: `dims[0]` is the row length (contiguous), `dims[1]` the
    /// number of rows, ...; unused entries are 1.
    pub dims: [u64; MAX_DIMS],
    pub ty: GgmlType,
    /// Byte offset of the data, relative to [`Gguf::data_offset`].
    pub offset: u64,
    /// Bytes of data.
    pub size: u64,
}

impl TensorInfo<'_> {
    /// The used dimensions, `ne[0]` first.
    pub fn shape(&self) -> &[u64] {
        &self.dims[..self.n_dims]
    }

    /// Total elements.
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Row length (`ne[0]`).
    pub fn row_len(&self) -> u64 {
        self.dims[0]
    }

    /// Number of rows: the product of all dimensions but the first.
    pub fn rows(&self) -> u64 {
        self.dims[1..].iter().product()
    }

    /// Fails with [`GgufError::UnsupportedTensorType`] unless the engine has
    /// kernels for this tensor's type.
    pub fn check_supported(&self) -> Result<(), GgufError> {
        if self.ty.is_supported() {
            Ok(())
        } else {
            Err(GgufError::UnsupportedTensorType { tensor: self.name.to_string(), ty: self.ty })
        }
    }
}

/// A parsed GGUF file (or header).
#[derive(Clone, Debug)]
pub struct Gguf<'a> {
    bytes: &'a [u8],
    file_size: u64,
    version: u32,
    metadata: Vec<MetaEntry<'a>>,
    tensors: Vec<TensorInfo<'a>>,
    alignment: u64,
    header_len: u64,
    data_offset: u64,
}

/// Hard limits on counts, on top of "fits in the file": tables larger than this
/// are refused before anything is allocated for them.
const MAX_TENSORS: u64 = 1 << 20;
const MAX_KEYS: u64 = 1 << 20;

/// Smallest encoding of a metadata entry (empty key, type, 1-byte value) and of
/// a tensor info (empty name, n_dims, one dim, type, offset).
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 8 + 4 + 8;

impl<'a> Gguf<'a> {
    /// Parses a whole GGUF file held in memory.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, GgufError> {
        Self::parse_inner(bytes, bytes.len() as u64)
    }

    /// Parses the header from `prefix`, the first bytes of a file of
    /// `file_size` bytes. Tensor data ranges are checked against `file_size`.
    /// Returns [`GgufError::NeedMore`] when the header continues past `prefix`:
    /// read at least that many bytes and call again.
    pub fn parse_header(prefix: &'a [u8], file_size: u64) -> Result<Self, GgufError> {
        if (prefix.len() as u64) > file_size {
            // Treat bytes beyond the declared size as absent.
            return Self::parse_inner(&prefix[..file_size as usize], file_size);
        }
        Self::parse_inner(prefix, file_size)
    }

    fn parse_inner(bytes: &'a [u8], file_size: u64) -> Result<Self, GgufError> {
        let mut cur = Cursor::new(bytes, file_size);
        let magic: [u8; 4] = {
            let m = cur.take(4, "magic")?;
            [m[0], m[1], m[2], m[3]]
        };
        if &magic != b"GGUF" {
            return Err(GgufError::BadMagic { found: magic });
        }
        let version = cur.u32("version")?;
        if version != 2 && version != 3 {
            return Err(GgufError::UnsupportedVersion { version });
        }
        let n_tensors = cur.u64("tensor count")?;
        let n_kv = cur.u64("metadata count")?;
        let kv_limit = (cur.file_remaining() / MIN_KV_BYTES).min(MAX_KEYS);
        if n_kv > kv_limit {
            return Err(GgufError::AbsurdCount { what: "metadata count", count: n_kv, limit: kv_limit });
        }
        let tensor_limit = (cur.file_remaining() / MIN_TENSOR_INFO_BYTES).min(MAX_TENSORS);
        if n_tensors > tensor_limit {
            return Err(GgufError::AbsurdCount { what: "tensor count", count: n_tensors, limit: tensor_limit });
        }

        let mut metadata: Vec<MetaEntry<'a>> = Vec::with_capacity(n_kv as usize);
        for _ in 0..n_kv {
            let key = cur.utf8("metadata key")?;
            let type_id = cur.u32("metadata value type")?;
            let ty = MetaType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType { key: key.to_string(), id: type_id })?;
            let value = meta::read_value(&mut cur, ty, key)?;
            if metadata.iter().any(|e| e.key == key) {
                return Err(GgufError::DuplicateKey { key: key.to_string() });
            }
            metadata.push(MetaEntry { key, value });
        }

        let alignment = match metadata.iter().find(|e| e.key == "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(e) => {
                let v = e.value.as_u64().ok_or(GgufError::BadMetadata { key: "general.alignment".to_string(), reason: "not an unsigned integer" })?;
                if v == 0 || !v.is_power_of_two() || v > 1 << 30 {
                    return Err(GgufError::BadAlignment { value: v });
                }
                v
            }
        };

        let mut tensors: Vec<TensorInfo<'a>> = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            tensors.push(read_tensor_info(&mut cur, alignment)?);
        }
        let header_len = cur.pos();
        let data_offset = header_len.div_ceil(alignment) * alignment;

        // Data ranges: inside the file, and pairwise disjoint.
        let data_size = file_size.checked_sub(data_offset);
        for t in &tensors {
            let end = t.offset.checked_add(t.size);
            match (end, data_size) {
                (Some(end), Some(data_size)) if end <= data_size => {}
                _ => {
                    return Err(GgufError::TensorOutOfBounds {
                        tensor: t.name.to_string(),
                        start: data_offset.saturating_add(t.offset),
                        end: data_offset.saturating_add(t.offset).saturating_add(t.size),
                        file_size,
                    })
                }
            }
        }
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_unstable_by_key(|&i| (tensors[i].offset, i));
        for pair in order.windows(2) {
            let (a, b) = (&tensors[pair[0]], &tensors[pair[1]]);
            if a.offset + a.size > b.offset {
                return Err(GgufError::TensorOverlap { first: a.name.to_string(), second: b.name.to_string() });
            }
        }
        let mut names: Vec<&str> = tensors.iter().map(|t| t.name).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(GgufError::DuplicateTensor { name: w[0].to_string() });
        }

        Ok(Gguf { bytes, file_size, version, metadata, tensors, alignment, header_len, data_offset })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// Size of the whole file (as given to `parse_header`, or the input length).
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// Bytes of the header proper (magic through the last tensor info).
    pub fn header_len(&self) -> u64 {
        self.header_len
    }

    /// Absolute file offset of the tensor data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Alignment of the data section and tensors (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// The bytes this `Gguf` was parsed from (the whole file, or the prefix).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// All metadata, in file order.
    pub fn metadata(&self) -> &[MetaEntry<'a>] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue<'a>> {
        self.metadata.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// A UTF-8 string value; `None` if absent, not a string, or not UTF-8.
    pub fn get_str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(|v| v.as_str())
    }

    /// Any integer value that fits in `u32`.
    pub fn get_u32(&self, key: &str) -> Option<u32> {
        self.get(key).and_then(|v| v.as_u32())
    }

    /// Any integer value that fits in `u64`.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.as_u64())
    }

    /// An `f32` (or `f64`, narrowed) value.
    pub fn get_f32(&self, key: &str) -> Option<f32> {
        self.get(key).and_then(|v| v.as_f32())
    }

    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(|v| v.as_bool())
    }

    pub fn get_array(&self, key: &str) -> Option<MetaArray<'a>> {
        self.get(key).and_then(|v| v.as_array())
    }

    /// Like [`Self::get_u32`], but absent is `Ok(None)` and a value of the
    /// wrong type or range is an error naming the key.
    pub fn opt_u32(&self, key: &str) -> Result<Option<u32>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u32().map(Some).ok_or_else(|| bad(key, "not an integer in 0..2^32")),
        }
    }

    /// Like [`Self::get_f32`], with errors as [`Self::opt_u32`].
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f32().map(Some).ok_or_else(|| bad(key, "not a floating-point number")),
        }
    }

    /// Like [`Self::get_str`], with errors as [`Self::opt_u32`].
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| bad(key, "not a UTF-8 string")),
        }
    }

    /// A required integer that fits in `u32`.
    pub fn req_u32(&self, key: &str) -> Result<u32, GgufError> {
        self.opt_u32(key)?.ok_or_else(|| GgufError::MissingKey { key: key.to_string() })
    }

    /// A required UTF-8 string.
    pub fn req_str(&self, key: &str) -> Result<&'a str, GgufError> {
        self.opt_str(key)?.ok_or_else(|| GgufError::MissingKey { key: key.to_string() })
    }

    /// The tensor table, in file order.
    pub fn tensors(&self) -> &[TensorInfo<'a>] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo<'a>> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Like [`Self::tensor`], but a missing tensor is an error.
    pub fn req_tensor(&self, name: &str) -> Result<&TensorInfo<'a>, GgufError> {
        self.tensor(name).ok_or_else(|| GgufError::MissingTensor { name: name.to_string() })
    }

    /// Absolute byte range of a tensor's data in the file (checked at parse time).
    pub fn tensor_range(&self, info: &TensorInfo<'_>) -> Range<u64> {
        let start = self.data_offset + info.offset;
        start..start + info.size
    }

    /// The tensor's data, if the parsed bytes contain it (always, after
    /// [`Self::parse`]; after [`Self::parse_header`] only if the prefix does).
    pub fn tensor_bytes(&self, info: &TensorInfo<'_>) -> Option<&'a [u8]> {
        let r = self.tensor_range(info);
        let start = usize::try_from(r.start).ok()?;
        let end = usize::try_from(r.end).ok()?;
        self.bytes.get(start..end)
    }
}

fn bad(key: &str, reason: &'static str) -> GgufError {
    GgufError::BadMetadata { key: key.to_string(), reason }
}

fn read_tensor_info<'a>(cur: &mut Cursor<'a>, alignment: u64) -> Result<TensorInfo<'a>, GgufError> {
    let name = cur.utf8("tensor name")?;
    let shape_err = |reason| GgufError::BadTensorShape { tensor: String::from(name), reason };
    let n_dims = cur.u32("tensor dimension count")? as usize;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(shape_err("the number of dimensions is not between 1 and 4"));
    }
    let mut dims = [1u64; MAX_DIMS];
    for d in dims.iter_mut().take(n_dims) {
        *d = cur.u64("tensor dimension")?;
    }
    let type_id = cur.u32("tensor type")?;
    let offset = cur.u64("tensor offset")?;

    if dims.contains(&0) {
        return Err(shape_err("a dimension is zero"));
    }
    // ggml stores element counts as int64.
    let elements = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).filter(|&n| n <= i64::MAX as u64);
    let Some(_elements) = elements else {
        return Err(shape_err("the element count overflows"));
    };
    let ty = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType { tensor: name.to_string(), id: type_id })?;
    let row_bytes = ty.row_bytes(dims[0]).ok_or_else(|| GgufError::RaggedTensorRow { tensor: String::from(name), ty, row: dims[0] })?;
    let size = row_bytes
        .checked_mul(dims[1])
        .and_then(|s| s.checked_mul(dims[2]))
        .and_then(|s| s.checked_mul(dims[3]))
        .ok_or_else(|| shape_err("the byte size overflows"))?;
    if offset % alignment != 0 {
        return Err(GgufError::MisalignedTensor { tensor: name.to_string(), offset, alignment });
    }
    Ok(TensorInfo { name, n_dims, dims, ty, offset, size })
}

#[cfg(test)]
pub(crate) mod builder;
#[cfg(test)]
mod tests;
