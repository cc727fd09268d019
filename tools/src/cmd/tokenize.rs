//! `axiom tokenize`: not built yet (skeleton; see the open issues).

#[derive(clap::Args)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<i32> {
    anyhow::bail!("`axiom tokenize` is not implemented yet")
}
