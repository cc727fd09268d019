//! `axiom`: the host side of AXIOM. Run with `cargo axiom <subcommand>` from the repo root.
//!
//! Each subcommand lives in its own module under `cmd/`; this file only dispatches.

mod cmd;
mod host;
mod pack;
mod synth;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "axiom", about = "AXIOM host tool: boot the kernel in QEMU, run the inference engine on the host, and pack models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the kernel and boot it in QEMU, streaming its serial output.
    Run(cmd::run::Args),
    /// Generate text on the host with the inference engine.
    Generate(cmd::generate::Args),
    /// Teacher-forced top-K logits per position, one JSON line each.
    Score(cmd::score::Args),
    /// Tokenize text with a model's tokenizer; prints a JSON array of ids.
    Tokenize(cmd::tokenize::Args),
    /// Perplexity of a text file, as llama.cpp's perplexity tool computes it.
    Perplexity(cmd::perplexity::Args),
    /// Write a layer-ordered, 4 KiB-aligned, checksummed GGUF (the kernel's disk image).
    Pack(cmd::pack::Args),
    /// A synthetic LLaMA-shaped GGUF of a real size (default model's tokenizer, random weights).
    Synth(cmd::synth::Args),
    /// Core-count scaling sweep of the kernel under QEMU; CSV and PNG under benchmarks/results/.
    Sweep(cmd::sweep::Args),
    /// Write the bootable ISO for a real PC (GRUB menu: chat, self-test smp, self-test nvme).
    Iso(cmd::iso::Args),
    /// The kernel's command-line keys (the key table); --update-docs writes them into the docs.
    Keys(cmd::keys::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => cmd::run::main(a),
        Command::Generate(a) => cmd::generate::main(a),
        Command::Score(a) => cmd::score::main(a),
        Command::Tokenize(a) => cmd::tokenize::main(a),
        Command::Perplexity(a) => cmd::perplexity::main(a),
        Command::Pack(a) => cmd::pack::main(a),
        Command::Sweep(a) => cmd::sweep::main(a),
        Command::Synth(a) => cmd::synth::main(a),
        Command::Keys(a) => cmd::keys::main(a),
        Command::Iso(a) => cmd::iso::main(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("axiom: error: {e:#}");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    #[test]
    fn run_flags_write_kernel_keys_and_the_model_flag_is_the_file() {
        // The kernel's `model` key (--model-at) and the runner's --model FILE side by side.
        let cli = Cli::try_parse_from(["axiom", "run", "--model", "m.gguf", "--prompt", "Hi there", "--tokens", "8", "--model-at", "ns:2", "--chat"]).unwrap();
        let Command::Run(args) = cli.command else { panic!("run") };
        assert_eq!(args.infer.model.as_deref(), Some(std::path::Path::new("m.gguf")));
        assert_eq!(args.infer.keys.cmdline(), "prompt=Hi%20there chat=1 tokens=8 model=ns:2");
        let e = Cli::try_parse_from(["axiom", "run", "--prompt", "x", "--top-p", "0"]).err().unwrap().to_string();
        assert!(e.contains("command-line key 'top_p': value '0' is not a number in (0, 1]"), "{e}");
    }
}
