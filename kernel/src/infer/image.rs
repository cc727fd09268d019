//! The packed model image on NVMe: read its GGUF header (growing the read
//! until the parser has everything), and check it describes a model the
//! engine can run with an extent table that fits the namespace.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use axiom_drivers::nvme::Namespace;
use axiom_engine::gguf::{Gguf, GgufError};
use axiom_engine::image::PackedLayout;
use axiom_engine::model::{ModelConfig, ModelLayout};
use axiom_engine::tokenizer::Tokenizer;

use crate::println;
use crate::storage::NvmeQueuePair;

/// First header read; grown to what the parser asks for.
const FIRST_READ: usize = 1 << 20;
/// A header larger than this is refused (real vocabularies are a few MiB).
const MAX_HEADER: usize = 64 << 20;

/// Everything the header says.
pub struct Image {
    pub config: ModelConfig,
    pub layout: ModelLayout,
    pub extents: PackedLayout,
    pub tokenizer: Tokenizer,
    pub file_size: u64,
    pub header_bytes: usize,
    pub arch: String,
}

fn read_prefix(qp: &mut NvmeQueuePair, ns: &Namespace, base: u64, len: usize) -> Result<Vec<u8>, String> {
    let block = ns.block_size as usize;
    let len = len.div_ceil(block) * block;
    let mut buf = vec![0u8; len];
    qp.read(ns, base / block as u64, &mut buf).map_err(|e| format!("reading the model header: {e}"))?;
    Ok(buf)
}

fn image_error(e: impl core::fmt::Display) -> String {
    format!("model image: {e}")
}

/// Reads and validates the image header at byte `base` of `ns`.
pub fn read(qp: &mut NvmeQueuePair, ns: &Namespace, base: u64) -> Result<Image, String> {
    let block = ns.block_size as u64;
    if !base.is_multiple_of(block) {
        return Err(format!("model offset {base} is not a multiple of the namespace's {block}-byte blocks"));
    }
    if base >= ns.bytes() {
        return Err(format!("model offset {base} lies beyond the namespace ({} bytes)", ns.bytes()));
    }
    let file_size = ns.bytes() - base;
    let mut want = FIRST_READ.min(file_size as usize);
    let prefix = loop {
        let buf = read_prefix(qp, ns, base, want)?;
        match Gguf::parse_header(&buf, file_size) {
            Ok(_) => break buf,
            Err(GgufError::NeedMore { bytes }) => {
                let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
                if bytes as u64 > file_size {
                    return Err(format!("model image is truncated: its header needs {bytes} bytes, the disk holds {file_size}"));
                }
                if bytes > MAX_HEADER {
                    return Err(format!("model image header of {bytes} bytes is larger than the {MAX_HEADER}-byte limit"));
                }
                if bytes <= want {
                    return Err(String::from("model image: the GGUF parser asked for no more bytes than it had"));
                }
                want = bytes;
            }
            Err(e) => return Err(format!("the disk does not hold a usable GGUF model image: {e}")),
        }
    };
    let g = Gguf::parse_header(&prefix, file_size).map_err(image_error)?;
    let config = ModelConfig::from_gguf(&g).map_err(image_error)?;
    let layout = ModelLayout::from_gguf(&g, &config).map_err(image_error)?;
    let extents = PackedLayout::from_gguf(&g).map_err(image_error)?;
    let tokenizer = Tokenizer::from_gguf(&g).map_err(image_error)?;
    let arch = String::from(g.get_str("general.architecture").unwrap_or("?"));
    check_extents(&layout, &extents, file_size)?;
    println!("model image: GGUF v{}, header {} bytes, {} layers, file {} bytes", g.version(), g.header_len(), config.n_layers, file_size);
    Ok(Image { config, layout, extents, tokenizer, file_size, header_bytes: prefix.len(), arch })
}

/// The engine's tensor spans must sit inside the extents `pack` recorded
/// (the slot holds the extent, the engine indexes it from its start).
fn check_extents(layout: &ModelLayout, extents: &PackedLayout, file_size: u64) -> Result<(), String> {
    if layout.layers.len() != extents.layers.len() {
        return Err(format!("model image: {} layer extents for {} layers", extents.layers.len(), layout.layers.len()));
    }
    let inside = |what: &str, span: &core::ops::Range<u64>, e: &axiom_engine::image::Extent| {
        let Some(end) = e.offset.checked_add(e.size) else {
            return Err(format!("model image: the {what} extent ({} bytes at {}) ends beyond 64 bits", e.size, e.offset));
        };
        if span.start != e.offset || span.end > end {
            Err(format!("model image: {what} tensors span {}..{} but its extent is {}..{end}", span.start, span.end, e.offset))
        } else if end > file_size {
            Err(format!("model image is truncated: {what} ends at byte {end} but the disk holds {file_size} from the model's offset"))
        } else {
            Ok(())
        }
    };
    inside("globals", &layout.globals.extent, &extents.globals)?;
    for (i, (l, e)) in layout.layers.iter().zip(&extents.layers).enumerate() {
        inside(&format!("layer {i}"), &l.extent, e)?;
    }
    Ok(())
}
