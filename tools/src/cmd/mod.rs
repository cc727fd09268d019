//! One module per `axiom` subcommand. Each exposes `Args` (clap) and
//! `main(Args) -> anyhow::Result<i32>` returning the process exit code.

pub mod generate;
pub mod iso;
pub mod keys;
pub mod pack;
pub mod perplexity;
pub mod run;
pub mod score;
pub mod sweep;
pub mod synth;
pub mod tokenize;
