//! GGUF metadata values: scalars, strings and arrays, borrowed from the file.
//!
//! Arrays keep their raw bytes and are decoded on iteration, so the 49k-entry
//! vocabulary of a model costs no copy. Their extent (string lengths included)
//! was checked when the file was parsed.

use alloc::string::ToString;

use super::cursor::Cursor;
use super::GgufError;

/// A metadata value type id, per the GGUF specification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl MetaType {
    pub fn from_id(id: u32) -> Option<Self> {
        use MetaType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Bytes of one value of a fixed-size type; `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<usize> {
        use MetaType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// The smallest number of bytes one value of this type occupies (a string
    /// is at least its 8-byte length).
    fn min_size(self) -> u64 {
        self.fixed_size().map(|n| n as u64).unwrap_or(8)
    }

    pub fn name(self) -> &'static str {
        use MetaType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

/// One metadata value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetaValue<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    /// Raw bytes (GGUF says UTF-8; tokenizer pieces are used as bytes).
    Str(&'a [u8]),
    Array(MetaArray<'a>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl<'a> MetaValue<'a> {
    pub fn ty(&self) -> MetaType {
        match self {
            MetaValue::U8(_) => MetaType::U8,
            MetaValue::I8(_) => MetaType::I8,
            MetaValue::U16(_) => MetaType::U16,
            MetaValue::I16(_) => MetaType::I16,
            MetaValue::U32(_) => MetaType::U32,
            MetaValue::I32(_) => MetaType::I32,
            MetaValue::F32(_) => MetaType::F32,
            MetaValue::Bool(_) => MetaType::Bool,
            MetaValue::Str(_) => MetaType::String,
            MetaValue::Array(_) => MetaType::Array,
            MetaValue::U64(_) => MetaType::U64,
            MetaValue::I64(_) => MetaType::I64,
            MetaValue::F64(_) => MetaType::F64,
        }
    }

    /// Any integer type, widened; `None` for non-integers.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            MetaValue::U8(v) => v as i128,
            MetaValue::I8(v) => v as i128,
            MetaValue::U16(v) => v as i128,
            MetaValue::I16(v) => v as i128,
            MetaValue::U32(v) => v as i128,
            MetaValue::I32(v) => v as i128,
            MetaValue::U64(v) => v as i128,
            MetaValue::I64(v) => v as i128,
            _ => return None,
        })
    }

    /// Any integer type whose value fits in a `u32`.
    pub fn as_u32(&self) -> Option<u32> {
        self.as_i128().and_then(|v| u32::try_from(v).ok())
    }

    /// Any integer type whose value fits in a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_i128().and_then(|v| u64::try_from(v).ok())
    }

    /// Any integer type whose value fits in an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_i128().and_then(|v| i64::try_from(v).ok())
    }

    /// An `f32`, or an `f64` narrowed to `f32`.
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            MetaValue::F32(v) => Some(v),
            MetaValue::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A string value that is valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| core::str::from_utf8(b).ok())
    }

    pub fn as_array(&self) -> Option<MetaArray<'a>> {
        match *self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// A metadata array: `len` values of one element type, kept as raw bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetaArray<'a> {
    elem: MetaType,
    len: usize,
    raw: &'a [u8],
}

impl<'a> MetaArray<'a> {
    pub fn elem_type(&self) -> MetaType {
        self.elem
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every element as a [`MetaValue`] (works for every element type).
    pub fn iter(&self) -> MetaArrayIter<'a> {
        MetaArrayIter { elem: self.elem, raw: self.raw, left: self.len }
    }

    /// Element `i` of a fixed-size element type, in O(1); `None` when out of
    /// range or when elements are strings (use [`Self::strings`]).
    pub fn get(&self, i: usize) -> Option<MetaValue<'a>> {
        let size = self.elem.fixed_size()?;
        if i >= self.len {
            return None;
        }
        let bytes = self.raw.get(i * size..(i + 1) * size)?;
        Some(decode_fixed(self.elem, bytes))
    }

    /// The elements of a string array as byte slices.
    pub fn strings(&self) -> Option<impl Iterator<Item = &'a [u8]> + Clone + 'a> {
        (self.elem == MetaType::String).then(|| self.iter().map(|v| v.as_bytes().unwrap_or(&[])))
    }

    /// The elements of an `f32` array.
    pub fn f32s(&self) -> Option<impl Iterator<Item = f32> + Clone + 'a> {
        (self.elem == MetaType::F32).then(|| self.raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
    }

    /// The elements of an `i32` array.
    pub fn i32s(&self) -> Option<impl Iterator<Item = i32> + Clone + 'a> {
        (self.elem == MetaType::I32).then(|| self.raw.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
    }

    /// The elements of a `u32` array.
    pub fn u32s(&self) -> Option<impl Iterator<Item = u32> + Clone + 'a> {
        (self.elem == MetaType::U32).then(|| self.raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
    }

    /// The elements of an array of any integer type, widened to `i64`
    /// (a `u64` above `i64::MAX` saturates).
    pub fn ints(&self) -> Option<impl Iterator<Item = i64> + Clone + 'a> {
        let integer = matches!(
            self.elem,
            MetaType::U8 | MetaType::I8 | MetaType::U16 | MetaType::I16 | MetaType::U32 | MetaType::I32 | MetaType::U64 | MetaType::I64
        );
        integer.then(|| self.iter().map(|v| v.as_i128().map(|x| x.clamp(i64::MIN as i128, i64::MAX as i128) as i64).unwrap_or(0)))
    }
}

/// Iterator over a [`MetaArray`]'s elements.
#[derive(Clone, Debug)]
pub struct MetaArrayIter<'a> {
    elem: MetaType,
    raw: &'a [u8],
    left: usize,
}

impl<'a> Iterator for MetaArrayIter<'a> {
    type Item = MetaValue<'a>;

    fn next(&mut self) -> Option<MetaValue<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The extent of every element was validated at parse time; the
        // `get`s below only keep this safe if that ever changes.
        if let Some(size) = self.elem.fixed_size() {
            let bytes = self.raw.get(..size)?;
            self.raw = &self.raw[size..];
            return Some(decode_fixed(self.elem, bytes));
        }
        let len_bytes: [u8; 8] = self.raw.get(..8)?.try_into().ok()?;
        let len = usize::try_from(u64::from_le_bytes(len_bytes)).ok()?;
        let s = self.raw.get(8..8usize.checked_add(len)?)?;
        self.raw = &self.raw[8 + len..];
        Some(MetaValue::Str(s))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for MetaArrayIter<'_> {}

fn decode_fixed(ty: MetaType, b: &[u8]) -> MetaValue<'static> {
    let b2 = |b: &[u8]| [b[0], b[1]];
    let b4 = |b: &[u8]| [b[0], b[1], b[2], b[3]];
    let b8 = |b: &[u8]| [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
    match ty {
        MetaType::U8 => MetaValue::U8(b[0]),
        MetaType::I8 => MetaValue::I8(b[0] as i8),
        MetaType::Bool => MetaValue::Bool(b[0] != 0),
        MetaType::U16 => MetaValue::U16(u16::from_le_bytes(b2(b))),
        MetaType::I16 => MetaValue::I16(i16::from_le_bytes(b2(b))),
        MetaType::U32 => MetaValue::U32(u32::from_le_bytes(b4(b))),
        MetaType::I32 => MetaValue::I32(i32::from_le_bytes(b4(b))),
        MetaType::F32 => MetaValue::F32(f32::from_le_bytes(b4(b))),
        MetaType::U64 => MetaValue::U64(u64::from_le_bytes(b8(b))),
        MetaType::I64 => MetaValue::I64(i64::from_le_bytes(b8(b))),
        MetaType::F64 => MetaValue::F64(f64::from_le_bytes(b8(b))),
        // Callers only pass fixed-size types.
        MetaType::String | MetaType::Array => MetaValue::Bool(false),
    }
}

/// Reads one value of type `ty` at the cursor; `key` names it in errors.
pub(super) fn read_value<'a>(cur: &mut Cursor<'a>, ty: MetaType, key: &str) -> Result<MetaValue<'a>, GgufError> {
    const WHAT: &str = "metadata value";
    if let Some(size) = ty.fixed_size() {
        let bytes = cur.take(size as u64, WHAT)?;
        return Ok(decode_fixed(ty, bytes));
    }
    if ty == MetaType::String {
        return Ok(MetaValue::Str(cur.string("metadata string")?));
    }
    // Array: element type, count, elements.
    let elem_id = cur.u32("metadata array type")?;
    let elem = MetaType::from_id(elem_id).ok_or_else(|| GgufError::UnknownValueType { key: key.to_string(), id: elem_id })?;
    if elem == MetaType::Array {
        return Err(GgufError::NestedArray { key: key.to_string() });
    }
    let count = cur.u64("metadata array length")?;
    let limit = cur.file_remaining() / elem.min_size();
    if count > limit || usize::try_from(count).is_err() {
        return Err(GgufError::AbsurdCount { what: "metadata array length", count, limit });
    }
    let start = cur.pos();
    let raw = if let Some(size) = elem.fixed_size() {
        cur.take(count * size as u64, "metadata array")?
    } else {
        // Walk the strings to find (and check) the array's extent.
        for _ in 0..count {
            cur.string("metadata array string")?;
        }
        cur.since(start)
    };
    Ok(MetaValue::Array(MetaArray { elem, len: count as usize, raw }))
}
