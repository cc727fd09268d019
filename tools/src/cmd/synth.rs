//! `axiom synth --shape llama3-8b|llama-1b|llama-135m|tiny --type q4_0|q4_1|q8_0
//! --seed S OUT.gguf`: a synthetic LLaMA-shaped GGUF of a real model's size,
//! with the default model's tokenizer and random weights at realistic
//! scales (see `synth.rs`), written streaming to disk. `axiom generate` runs
//! it; `axiom pack` (or `axiom run --model`) turns it into the kernel's image.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use axiom_engine::ggml_type::GgmlType;

use crate::synth::{synth, Shape, Types};

#[derive(clap::Args)]
pub struct Args {
    /// Model shape: llama3-8b (32 layers, width 4096, untied head), llama-1b
    /// (16 layers, width 2048), llama-135m (SmolLM2-135M's shape), tiny.
    #[arg(long)]
    shape: String,
    /// Type of the blocks' weight matrices: q4_0, q4_1, q8_0.
    #[arg(long = "type", default_value = "q4_0")]
    ty: String,
    /// Type of the token embedding and output head: q8_0 (default, as
    /// `axiom pack` gives them), q4_0, q4_1.
    #[arg(long, default_value = "q8_0")]
    embd_type: String,
    /// Seed of the random weights (same seed, same bytes).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The GGUF whose tokenizer the model gets (default: the default model).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Output file.
    output: PathBuf,
}

pub fn main(args: Args) -> Result<i32> {
    let shape = Shape::by_name(&args.shape)?;
    let parse = |s: &str| match s {
        "q4_0" => Ok(GgmlType::Q4_0),
        "q4_1" => Ok(GgmlType::Q4_1),
        "q8_0" => Ok(GgmlType::Q8_0),
        other => Err(anyhow::anyhow!("unsupported type {other:?}: use q4_0, q4_1 or q8_0 (K-quants are not written yet)")),
    };
    let types = Types { matrices: parse(&args.ty)?, embeddings: parse(&args.embd_type)? };
    let ty = types.matrices;
    let tokenizer = match args.tokenizer {
        Some(p) => p,
        None => axiom_tools::infer::default_model()?,
    };
    let start = std::time::Instant::now();
    let mut last_pct = u64::MAX;
    let tty = std::io::stderr().is_terminal();
    let report = synth(&shape, types, args.seed, &tokenizer, &args.output, &mut |done, total| {
        let pct = done * 100 / total.max(1);
        if tty && pct != last_pct {
            last_pct = pct;
            eprint!("\rsynth: {pct}% of {} MiB", total >> 20);
        }
    });
    if tty {
        eprint!("\r\x1b[K");
    }
    let report = report?;
    eprintln!(
        "synth: {} ({}, seed {}, vocab {} from {}): {} tensors, {} parameters, {} bytes ({:.2} GiB) in {:.1} s -> {}",
        shape.name,
        ty.name(),
        args.seed,
        report.n_vocab,
        tokenizer.display(),
        report.tensors,
        report.params,
        report.file_size,
        report.file_size as f64 / (1u64 << 30) as f64,
        start.elapsed().as_secs_f64(),
        args.output.display()
    );
    Ok(0)
}
