//! A small GGUF writer for tests: builds files in memory, including
//! deliberately broken ones.

use alloc::string::String;
use alloc::vec::Vec;

use crate::ggml_type::GgmlType;

struct TensorEntry {
    name: String,
    dims: Vec<u64>,
    ty: u32,
    /// Added to the natural offset; `u64::MAX` forces offset 0.
    offset_bump: u64,
    data: Vec<u8>,
}

pub struct GgufBuilder {
    version: u32,
    kvs: Vec<(String, u32, Vec<u8>)>,
    tensors: Vec<TensorEntry>,
    alignment: u64,
}

fn gguf_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

impl GgufBuilder {
    pub fn new(version: u32) -> Self {
        Self { version, kvs: Vec::new(), tensors: Vec::new(), alignment: 32 }
    }

    pub fn set_alignment(&mut self, a: u64) {
        self.alignment = a;
        self.kv_u32("general.alignment", a as u32);
    }

    pub fn kv_raw(&mut self, key: &str, ty: u32, raw: &[u8]) {
        self.kvs.push((key.into(), ty, raw.to_vec()));
    }

    pub fn kv_u32(&mut self, key: &str, v: u32) {
        self.kv_raw(key, 4, &v.to_le_bytes());
    }

    pub fn kv_i32(&mut self, key: &str, v: i32) {
        self.kv_raw(key, 5, &v.to_le_bytes());
    }

    pub fn kv_u64(&mut self, key: &str, v: u64) {
        self.kv_raw(key, 10, &v.to_le_bytes());
    }

    pub fn kv_f32(&mut self, key: &str, v: f32) {
        self.kv_raw(key, 6, &v.to_le_bytes());
    }

    pub fn kv_bool(&mut self, key: &str, v: bool) {
        self.kv_raw(key, 7, &[v as u8]);
    }

    pub fn kv_str(&mut self, key: &str, v: &str) {
        let mut raw = Vec::new();
        gguf_string(&mut raw, v.as_bytes());
        self.kv_raw(key, 8, &raw);
    }

    pub fn kv_str_array(&mut self, key: &str, v: &[&str]) {
        let mut raw = Vec::new();
        raw.extend_from_slice(&8u32.to_le_bytes());
        raw.extend_from_slice(&(v.len() as u64).to_le_bytes());
        for s in v {
            gguf_string(&mut raw, s.as_bytes());
        }
        self.kv_raw(key, 9, &raw);
    }

    pub fn kv_f32_array(&mut self, key: &str, v: &[f32]) {
        let mut raw = Vec::new();
        raw.extend_from_slice(&6u32.to_le_bytes());
        raw.extend_from_slice(&(v.len() as u64).to_le_bytes());
        for x in v {
            raw.extend_from_slice(&x.to_le_bytes());
        }
        self.kv_raw(key, 9, &raw);
    }

    pub fn kv_i32_array(&mut self, key: &str, v: &[i32]) {
        let mut raw = Vec::new();
        raw.extend_from_slice(&5u32.to_le_bytes());
        raw.extend_from_slice(&(v.len() as u64).to_le_bytes());
        for x in v {
            raw.extend_from_slice(&x.to_le_bytes());
        }
        self.kv_raw(key, 9, &raw);
    }

    pub fn tensor_custom(&mut self, name: &str, dims: &[u64], ty: u32, offset_bump: u64, data: &[u8]) {
        self.tensors.push(TensorEntry { name: name.into(), dims: dims.to_vec(), ty, offset_bump, data: data.to_vec() });
    }

    pub fn tensor_raw(&mut self, name: &str, dims: &[u64], ty: GgmlType, data: &[u8]) {
        self.tensor_custom(name, dims, ty.id(), 0, data);
    }

    pub fn tensor_f32(&mut self, name: &str, dims: &[u64], data: &[f32]) {
        let mut raw = Vec::with_capacity(data.len() * 4);
        for x in data {
            raw.extend_from_slice(&x.to_le_bytes());
        }
        self.tensor_raw(name, dims, GgmlType::F32, &raw);
    }

    pub fn finish(&self) -> Vec<u8> {
        let align = |x: u64| x.div_ceil(self.alignment) * self.alignment;
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for (k, ty, raw) in &self.kvs {
            gguf_string(&mut out, k.as_bytes());
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(raw);
        }
        let mut offsets = Vec::new();
        let mut next = 0u64;
        for t in &self.tensors {
            let natural = align(next);
            let off = if t.offset_bump == u64::MAX { 0 } else { natural.wrapping_add(t.offset_bump) };
            offsets.push(off);
            next = natural + t.data.len() as u64;
            gguf_string(&mut out, t.name.as_bytes());
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ty.to_le_bytes());
            out.extend_from_slice(&off.to_le_bytes());
        }
        if !self.tensors.is_empty() {
            let data_start = align(out.len() as u64) as usize;
            out.resize(data_start, 0);
            for (t, off) in self.tensors.iter().zip(&offsets) {
                if *off > 1 << 32 {
                    continue; // an absurd offset for an error test: no data
                }
                let at = data_start + *off as usize;
                if out.len() < at + t.data.len() {
                    out.resize(at + t.data.len(), 0);
                }
                out[at..at + t.data.len()].copy_from_slice(&t.data);
            }
        }
        out
    }
}
