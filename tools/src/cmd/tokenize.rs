//! `axiom tokenize`: the token ids of a text under a model's tokenizer, as a
//! JSON array on one line (`[504,3575,282]`).
//!
//! Defaults follow llama.cpp's `llama-tokenize`: special-token spellings in the
//! text (`<|im_start|>`) become special tokens, and BOS/EOS are added when the
//! model's metadata asks for them. Only the GGUF header is read.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use axiom_engine::tokenizer::{ChatMessage, Tokenizer};

use crate::pack::source::GgufFile;

#[derive(clap::Args)]
pub struct Args {
    /// GGUF model file (only its header is read).
    #[arg(long)]
    model: PathBuf,
    /// Text to tokenize.
    #[arg(long, conflicts_with = "file")]
    text: Option<String>,
    /// Read the text from this file instead (`-` for stdin); bytes that are
    /// not UTF-8 are read as U+FFFD, as llama.cpp does.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Tokenize special-token spellings such as `<|im_start|>` as plain text.
    #[arg(long)]
    no_parse_special: bool,
    /// Never add BOS/EOS (by default they are added when the model asks).
    #[arg(long)]
    no_add_special: bool,
    /// Wrap the text as a user message in the model's chat template, ending
    /// with the assistant prompt (a base model without a template:
    /// `Question: TEXT\nAnswer:`).
    #[arg(long)]
    chat: bool,
    /// Print `[{"id":..,"piece":".."},...]`: each token with the text it
    /// stands for (control tokens spelled out; partial UTF-8 shown as U+FFFD).
    #[arg(long)]
    pieces: bool,
}

/// Loads the tokenizer of a GGUF model (header only).
pub fn load_tokenizer(model: &std::path::Path) -> Result<Tokenizer> {
    let file = GgufFile::open(model)?;
    Tokenizer::from_gguf(&file.gguf()).with_context(|| format!("{}", model.display()))
}

pub fn main(args: Args) -> Result<i32> {
    let text: Vec<u8> = match (&args.text, &args.file) {
        (Some(t), None) => t.clone().into_bytes(),
        (None, Some(p)) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).context("cannot read stdin")?;
            buf
        }
        (None, Some(p)) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        _ => bail!("give the text with --text TEXT or --file PATH"),
    };
    let tok = load_tokenizer(&args.model)?;
    let add_special = !args.no_add_special;
    let parse_special = !args.no_parse_special;
    let ids = if args.chat {
        let content = String::from_utf8_lossy(&text);
        let prompt = tok.prompt_template()?.render(&[ChatMessage { role: "user", content: &content }], true);
        tok.encode(&prompt, add_special, true)
    } else {
        tok.encode_bytes(&text, add_special, parse_special)
    };
    let json = if args.pieces {
        let items: Vec<serde_json::Value> = ids
            .iter()
            .map(|&id| serde_json::json!({"id": id, "piece": String::from_utf8_lossy(tok.token_piece_special(id))}))
            .collect();
        serde_json::to_string(&items)?
    } else {
        serde_json::to_string(&ids)?
    };
    println!("{json}");
    Ok(0)
}
