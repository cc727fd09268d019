//! `axiom pack IN.gguf OUT.gguf [--type q4_0|q4_1|q8_0|keep]`: write the
//! layer-ordered, 4 KiB-aligned, checksummed GGUF image the kernel streams
//! from (layout and `axiom.*` keys: docs/engine.md, "The packed model image").

use std::path::PathBuf;

use anyhow::{bail, Result};
use axiom_engine::ggml_type::GgmlType;

use crate::pack::{pack, ProgressLine, TypeChoice, TypeRules};

#[derive(clap::Args)]
pub struct Args {
    /// Source GGUF model (tensor types f32, f16, bf16, q4_0, q4_1, q5_0,
    /// q5_1, q8_0, iq4_nl, q2_K, q3_K, q4_K, q5_K, q6_K).
    input: PathBuf,
    /// Output image.
    output: PathBuf,
    /// Type of the weight matrices: `keep` copies every tensor as it is (any
    /// source type); `q4_0`, `q4_1`, `q8_0` requantize the 2-D weights of the
    /// blocks from any source type (dequantized as ggml does, then llama.cpp's
    /// reference quantizers; norms and other 1-D tensors stay as they are).
    #[arg(long = "type", default_value = "keep")]
    ty: String,
    /// Type of the token embedding and output head: `keep`, `q8_0`, `q4_0`,
    /// `q4_1`, `f16`. Default: `keep` with `--type keep`, else `q8_0` (llama.cpp
    /// gives the output head more precision, often Q6_K; pack writes only
    /// Q4_0/Q4_1/Q8_0/F16, and Q8_0 is the closest of them).
    #[arg(long)]
    embd_type: Option<String>,
    /// Print the extent table as JSON on stdout:
    /// `{"data_offset":..,"globals":{"offset":..,"size":..,"crc32c":..},"layers":[...]}`.
    #[arg(long)]
    json: bool,
}

fn parse_type(s: &str, allow_f16: bool) -> Result<TypeChoice> {
    Ok(match s {
        "keep" => TypeChoice::Keep,
        "q4_0" => TypeChoice::To(GgmlType::Q4_0),
        "q4_1" => TypeChoice::To(GgmlType::Q4_1),
        "q8_0" => TypeChoice::To(GgmlType::Q8_0),
        "f16" if allow_f16 => TypeChoice::To(GgmlType::F16),
        other => bail!("unsupported type {other:?}: use keep, q4_0, q4_1 or q8_0{}", if allow_f16 { " or f16" } else { "" }),
    })
}

pub fn main(args: Args) -> Result<i32> {
    let matrices = parse_type(&args.ty, false)?;
    let embeddings = match (&args.embd_type, matrices) {
        (Some(s), _) => parse_type(s, true)?,
        (None, TypeChoice::Keep) => TypeChoice::Keep,
        (None, TypeChoice::To(_)) => TypeChoice::To(GgmlType::Q8_0),
    };
    let start = std::time::Instant::now();
    let mut line = ProgressLine::new("pack");
    let report = pack(&args.input, &args.output, &TypeRules { matrices, embeddings }, &mut |p| line.update(p));
    line.clear();
    let report = report?;
    eprintln!(
        "pack: {} -> {}: {} tensors ({} converted), {} layers, {} bytes, data at {}, {:.1} s",
        args.input.display(),
        args.output.display(),
        report.tensors,
        report.converted,
        report.layers,
        report.file_size,
        report.data_offset,
        start.elapsed().as_secs_f64()
    );
    if args.json {
        let extent = |&(offset, size, crc32c): &(u64, u64, u32)| serde_json::json!({"offset": offset, "size": size, "crc32c": crc32c});
        let summary = serde_json::json!({
            "file_size": report.file_size,
            "data_offset": report.data_offset,
            "globals": extent(&report.extents[0]),
            "layers": report.extents[1..].iter().map(extent).collect::<Vec<_>>(),
        });
        println!("{summary}");
    }
    Ok(0)
}
