//! Helpers shared by the QEMU integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use axiom_tools::infer;

/// The `axiom` binary of this build.
pub fn axiom() -> Command {
    Command::new(env!("CARGO_BIN_EXE_axiom"))
}

/// `model` packed by `axiom pack`, from the image cache `axiom run` uses
/// (packed once per model content).
pub fn packed_image(model: &Path) -> PathBuf {
    infer::cached_image(model, |src, out| {
        let status = axiom().arg("pack").arg(src).arg(out).status()?;
        anyhow::ensure!(status.success(), "axiom pack failed ({status})");
        Ok(())
    })
    .unwrap_or_else(|e| panic!("packing {}: {e:#}", model.display()))
}
