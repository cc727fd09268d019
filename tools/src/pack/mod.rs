//! `pack`: rewrite a GGUF model as AXIOM's disk image.
//!
//! The output is a valid GGUF v3 file (llama.cpp loads it) laid out for
//! streaming: `general.alignment = 4096`, so every tensor starts on a 4 KiB
//! boundary and is padded to one; the global tensors (embedding, final norm,
//! output head) come first as one extent, then each layer's tensors as one
//! contiguous extent, in layer order. Extra metadata keys give each extent's
//! absolute file offset, size and CRC32C (see `docs/engine.md`, "The packed
//! model image"). Optionally the weight matrices are requantized with
//! llama.cpp's reference quantizers.
//!
//! Deterministic, and idempotent: packing a packed file with the same type
//! rules reproduces it byte for byte.

mod plan;
mod progress;
pub mod source;
pub(crate) mod writer;

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use axiom_engine::crc32c::Crc32c;
use axiom_engine::ggml_type::GgmlType;
use axiom_engine::gguf::{Gguf, MetaValue};
use axiom_engine::image::PACK_VERSION;
use axiom_engine::quant;

pub use plan::{llama_ftype, TypeChoice, TypeRules, ALIGN};
pub use progress::{PackProgress, ProgressLine};
use plan::{pad, Extent, Plan};
use source::GgufFile;
use writer::{TensorEntry, Value};


/// What a pack run did.
#[derive(Debug, Default)]
pub struct PackReport {
    pub tensors: usize,
    pub converted: usize,
    pub layers: usize,
    pub file_size: u64,
    pub data_offset: u64,
    /// (offset, size, crc32c) of the globals extent, then of each layer.
    pub extents: Vec<(u64, u64, u32)>,
}

/// Packs `input` into `output` (written to a temporary file beside it, then
/// renamed, so a failed run leaves no partial image), calling `progress`
/// after every chunk it writes.
pub fn pack(input: &Path, output: &Path, rules: &TypeRules, progress: &mut dyn FnMut(PackProgress)) -> Result<PackReport> {
    let src = GgufFile::open(input)?;
    let tmp = output.with_file_name(format!(
        ".{}.partial",
        output.file_name().and_then(|n| n.to_str()).unwrap_or("packed.gguf")
    ));
    let result = write_image(&src, &tmp, rules, progress);
    match result {
        Ok(report) => {
            std::fs::rename(&tmp, output).with_context(|| format!("cannot rename {} to {}", tmp.display(), output.display()))?;
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_image(src: &GgufFile, out_path: &Path, rules: &TypeRules, progress: &mut dyn FnMut(PackProgress)) -> Result<PackReport> {
    let g = src.gguf();
    let plan = plan::plan(&g, rules)?;
    let converted = plan.tensors.iter().filter(|t| t.out_ty != t.src.ty).count();

    // Metadata: the source's, minus what we own, then ours. Header length
    // does not depend on the values of our keys (fixed-width), so lay out
    // once with zeros, then write again with the real extents.
    let ftype = match rules.matrices {
        TypeChoice::To(ty) if plan.tensors.iter().any(|t| t.out_ty == ty && t.src.ty != ty) => plan::llama_ftype(ty),
        _ => None,
    };
    let any_quantized = plan.tensors.iter().any(|t| !matches!(t.out_ty, GgmlType::F32 | GgmlType::F16));
    let zeros = Extents::zeroed(plan.n_layers);
    let kvs = metadata(&g, ftype, any_quantized, &zeros);
    let entries = tensor_entries(&plan);
    let header_len = writer::header(&kvs, &entries).len() as u64;
    let data_offset = pad(header_len);

    let file = File::create(out_path).with_context(|| format!("cannot create {}", out_path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(&vec![0u8; data_offset as usize])?;

    // Data, extent by extent, checksumming as we go.
    let mut extents = Extents::zeroed(plan.n_layers);
    let mut row_f32 = Vec::new();
    let mut buf = Vec::new();
    let mut crc = Crc32c::new();
    let mut current: Option<Extent> = None;
    let mut written = 0u64;
    let total_bytes: u64 = plan.tensors.iter().map(|t| pad(t.out_size)).sum();
    let mut at = PackProgress { globals_done: false, layers_done: 0, layers: plan.n_layers, bytes: 0, total_bytes };
    for t in &plan.tensors {
        if current != Some(t.extent) {
            if let Some(done) = current {
                extents.set(done, crc.finish());
            }
            current = Some(t.extent);
            crc = Crc32c::new();
            (at.globals_done, at.layers_done) = match t.extent {
                Extent::Globals => (false, 0),
                Extent::Layer(n) => (true, n),
            };
        }
        debug_assert_eq!(written, t.offset);
        let abs = g.data_offset() + t.src.offset;
        let mut converter = Converter::new(t);
        while let Some(bytes) = converter.next_chunk(src, abs, &mut buf, &mut row_f32)? {
            out.write_all(bytes)?;
            crc.update(bytes);
            at.bytes += bytes.len() as u64;
            progress(at);
        }
        let padding = vec![0u8; (pad(t.out_size) - t.out_size) as usize];
        out.write_all(&padding)?;
        crc.update(&padding);
        written += pad(t.out_size);
        at.bytes = written;
    }
    if let Some(done) = current {
        extents.set(done, crc.finish());
    }
    at.globals_done = true;
    at.layers_done = plan.n_layers;
    progress(at);
    // An empty globals extent (a vocabulary-only file) still has a checksum.
    for (i, &(rel, size)) in plan.extents.iter().enumerate() {
        extents.offset[i] = data_offset + rel;
        extents.size[i] = size;
        if size == 0 {
            extents.crc[i] = Crc32c::new().finish();
        }
    }

    let kvs = metadata(&g, ftype, any_quantized, &extents);
    let header = writer::header(&kvs, &entries);
    if header.len() as u64 != header_len {
        bail!("internal error: header length changed between layout ({header_len}) and final write ({})", header.len());
    }
    out.flush()?;
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&header)?;
    file.sync_all()?;

    Ok(PackReport {
        tensors: plan.tensors.len(),
        converted,
        layers: plan.n_layers,
        file_size: data_offset + written,
        data_offset,
        extents: (0..extents.offset.len()).map(|i| (extents.offset[i], extents.size[i], extents.crc[i])).collect(),
    })
}

/// Reads a tensor and produces its output bytes a bounded chunk at a time
/// (whole rows, at most [`CHUNK_BYTES`] of input), so only a few MiB are in
/// memory however large the tensor.
struct Converter<'t, 'a> {
    t: &'t plan::Planned<'a>,
    in_row: usize,
    out_row: usize,
    rows_per_chunk: usize,
    next_row: usize,
    rows: usize,
}

/// Input bytes read per chunk.
const CHUNK_BYTES: usize = 8 << 20;

impl<'t, 'a> Converter<'t, 'a> {
    fn new(t: &'t plan::Planned<'a>) -> Self {
        let cols = t.src.row_len();
        let in_row = t.src.ty.row_bytes(cols).expect("validated by the reader") as usize;
        let out_row = t.out_ty.row_bytes(cols).expect("checked by the plan") as usize;
        let rows_per_chunk = (CHUNK_BYTES / in_row.max(1)).max(1);
        Self { t, in_row, out_row, rows_per_chunk, next_row: 0, rows: t.src.rows() as usize }
    }

    /// The next chunk of output, or `None` when the tensor is done.
    fn next_chunk<'b>(&mut self, src: &GgufFile, abs: u64, buf: &'b mut Vec<u8>, row_f32: &mut Vec<f32>) -> Result<Option<&'b [u8]>> {
        if self.next_row >= self.rows {
            return Ok(None);
        }
        let rows = self.rows_per_chunk.min(self.rows - self.next_row);
        let at = abs + (self.next_row * self.in_row) as u64;
        self.next_row += rows;
        let t = self.t;
        if t.out_ty == t.src.ty {
            buf.resize(rows * self.in_row, 0);
            src.read_at(at, buf)?;
            return Ok(Some(&buf[..]));
        }
        // Through f32, row by row: ggml's to_float, then llama.cpp's reference quantizer.
        let mut input = vec![0u8; rows * self.in_row];
        src.read_at(at, &mut input)?;
        buf.resize(rows * self.out_row, 0);
        row_f32.resize(t.src.row_len() as usize, 0.0);
        for (inp, out) in input.chunks_exact(self.in_row).zip(buf.chunks_exact_mut(self.out_row)) {
            quant::dequantize_row(t.src.ty, inp, row_f32).map_err(|e| anyhow::anyhow!("tensor {}: {e}", t.src.name))?;
            quant::quantize_row(t.out_ty, row_f32, out).map_err(|e| anyhow::anyhow!("tensor {}: {e}", t.src.name))?;
        }
        Ok(Some(&buf[..]))
    }
}

/// Absolute offsets, sizes and checksums: `[0]` globals, then layers.
struct Extents {
    offset: Vec<u64>,
    size: Vec<u64>,
    crc: Vec<u32>,
}

impl Extents {
    fn zeroed(n_layers: usize) -> Self {
        Self { offset: vec![0; n_layers + 1], size: vec![0; n_layers + 1], crc: vec![0; n_layers + 1] }
    }
    fn set(&mut self, e: Extent, crc: u32) {
        let i = match e {
            Extent::Globals => 0,
            Extent::Layer(n) => n + 1,
        };
        self.crc[i] = crc;
    }
}

/// Metadata keys `pack` owns: dropped from the source, written fresh.
fn owned_key(key: &str) -> bool {
    key == "general.alignment" || key.starts_with("axiom.")
}

/// The output metadata, in a deterministic order: the source's keys (with
/// `general.file_type` updated in place), any of `general.file_type` /
/// `general.quantization_version` that were missing, `general.alignment`,
/// then the `axiom.*` keys.
fn metadata<'a>(g: &Gguf<'a>, ftype: Option<u32>, quantized: bool, x: &Extents) -> Vec<(String, Value<'a>)> {
    let mut kvs: Vec<(String, Value<'a>)> = Vec::new();
    for e in g.metadata() {
        if owned_key(e.key) {
            continue;
        }
        let value = match (e.key, ftype) {
            ("general.file_type", Some(ft)) => Value::Copied(MetaValue::U32(ft)),
            _ => Value::Copied(e.value),
        };
        kvs.push((e.key.to_string(), value));
    }
    let has = |k: &str| g.get(k).is_some();
    if let (Some(ft), false) = (ftype, has("general.file_type")) {
        kvs.push(("general.file_type".into(), Value::U32(ft)));
    }
    if quantized && !has("general.quantization_version") {
        kvs.push(("general.quantization_version".into(), Value::U32(2)));
    }
    kvs.push(("general.alignment".into(), Value::U32(ALIGN as u32)));
    kvs.push(("axiom.pack.version".into(), Value::U32(PACK_VERSION)));
    kvs.push(("axiom.globals.offset".into(), Value::U64(x.offset[0])));
    kvs.push(("axiom.globals.size".into(), Value::U64(x.size[0])));
    kvs.push(("axiom.globals.crc32c".into(), Value::U32(x.crc[0])));
    kvs.push(("axiom.layer.count".into(), Value::U32((x.offset.len() - 1) as u32)));
    kvs.push(("axiom.layer.offset".into(), Value::ArrayU64(x.offset[1..].to_vec())));
    kvs.push(("axiom.layer.size".into(), Value::ArrayU64(x.size[1..].to_vec())));
    kvs.push(("axiom.layer.crc32c".into(), Value::ArrayU32(x.crc[1..].to_vec())));
    kvs
}

fn tensor_entries<'p>(plan: &'p Plan<'_>) -> Vec<TensorEntry<'p>> {
    plan.tensors
        .iter()
        .map(|t| TensorEntry { name: t.src.name, dims: t.src.shape(), ty: t.out_ty, offset: t.offset })
        .collect()
}
