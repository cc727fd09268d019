//! Serializing a GGUF v3 header: metadata (copied values keep their exact
//! GGUF types) and the tensor table. Data is written by the caller.

use axiom_engine::ggml_type::GgmlType;
use axiom_engine::gguf::{MetaType, MetaValue};

/// GGUF value type ids (GGUF specification).
fn type_id(t: MetaType) -> u32 {
    match t {
        MetaType::U8 => 0,
        MetaType::I8 => 1,
        MetaType::U16 => 2,
        MetaType::I16 => 3,
        MetaType::U32 => 4,
        MetaType::I32 => 5,
        MetaType::F32 => 6,
        MetaType::Bool => 7,
        MetaType::String => 8,
        MetaType::Array => 9,
        MetaType::U64 => 10,
        MetaType::I64 => 11,
        MetaType::F64 => 12,
    }
}

/// A metadata value to write: one copied from the source file, or one of
/// ours.
#[derive(Clone, Debug)]
pub enum Value<'a> {
    Copied(MetaValue<'a>),
    U32(u32),
    U64(u64),
    ArrayU32(Vec<u32>),
    ArrayU64(Vec<u64>),
}

/// One tensor-table entry.
pub struct TensorEntry<'a> {
    pub name: &'a str,
    pub dims: &'a [u64],
    pub ty: GgmlType,
    /// Offset relative to the data section.
    pub offset: u64,
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Writes a scalar or string value's payload (no type id).
fn put_payload(out: &mut Vec<u8>, v: &MetaValue<'_>) {
    match *v {
        MetaValue::U8(x) => out.push(x),
        MetaValue::I8(x) => out.push(x as u8),
        MetaValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => put_u32(out, x),
        MetaValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => out.push(x as u8),
        MetaValue::Str(s) => put_str(out, s),
        MetaValue::U64(x) => put_u64(out, x),
        MetaValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Array(a) => {
            put_u32(out, type_id(a.elem_type()));
            put_u64(out, a.len() as u64);
            for e in a.iter() {
                put_payload(out, &e);
            }
        }
    }
}

fn put_value(out: &mut Vec<u8>, v: &Value<'_>) {
    match v {
        Value::Copied(m) => {
            put_u32(out, type_id(m.ty()));
            put_payload(out, m);
        }
        Value::U32(x) => {
            put_u32(out, type_id(MetaType::U32));
            put_u32(out, *x);
        }
        Value::U64(x) => {
            put_u32(out, type_id(MetaType::U64));
            put_u64(out, *x);
        }
        Value::ArrayU32(xs) => {
            put_u32(out, type_id(MetaType::Array));
            put_u32(out, type_id(MetaType::U32));
            put_u64(out, xs.len() as u64);
            xs.iter().for_each(|&x| put_u32(out, x));
        }
        Value::ArrayU64(xs) => {
            put_u32(out, type_id(MetaType::Array));
            put_u32(out, type_id(MetaType::U64));
            put_u64(out, xs.len() as u64);
            xs.iter().for_each(|&x| put_u64(out, x));
        }
    }
}

/// The header of a GGUF v3 file, up to (not including) the padding before
/// the data section.
pub fn header(kvs: &[(String, Value<'_>)], tensors: &[TensorEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    put_u32(&mut out, 3);
    put_u64(&mut out, tensors.len() as u64);
    put_u64(&mut out, kvs.len() as u64);
    for (key, value) in kvs {
        put_str(&mut out, key.as_bytes());
        put_value(&mut out, value);
    }
    for t in tensors {
        put_str(&mut out, t.name.as_bytes());
        put_u32(&mut out, t.dims.len() as u32);
        t.dims.iter().for_each(|&d| put_u64(&mut out, d));
        put_u32(&mut out, t.ty.id());
        put_u64(&mut out, t.offset);
    }
    out
}
