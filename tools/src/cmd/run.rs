//! `axiom run`: not built yet (skeleton; see the open issues).

#[derive(clap::Args)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<i32> {
    anyhow::bail!("`axiom run` is not implemented yet")
}
