//! Building the kernel ELF with a nested `cargo build`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The repository root (this crate lives in `tools/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tools/ has a parent").to_path_buf()
}

/// Where the kernel is built: `$CARGO_TARGET_DIR/kernel` (else
/// `<repo>/target/kernel`). A directory of its own, so a nested build never
/// waits on the lock of the `cargo` that runs this tool or its tests.
pub fn kernel_target_dir() -> PathBuf {
    let base = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        }
        _ => workspace_root().join("target"),
    };
    base.join("kernel")
}

static BUILD: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Build the kernel (`cargo build --release -p axiom-kernel --features
/// runtime`: the binary needs the hardware layer's boot assembly, allocator
/// and runtime symbols, which host builds leave out) once per process and
/// return the ELF's path. `AXIOM_KERNEL=path` skips the build.
pub fn build_kernel() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("AXIOM_KERNEL") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("AXIOM_KERNEL={} is not a file", p.display());
        }
        return Ok(p);
    }
    let mut done = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = done.as_ref() {
        return Ok(p.clone());
    }
    let target = kernel_target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(workspace_root())
        .args(["build", "--release", "--quiet", "-p", "axiom-kernel", "--features", "runtime"])
        .env("CARGO_TARGET_DIR", &target)
        // Flags meant for host code must not leak into the kernel link.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .with_context(|| format!("running {cargo} build -p axiom-kernel"))?;
    if !status.success() {
        bail!("building the kernel failed ({status})");
    }
    let elf = target.join("release").join("axiom-kernel");
    if !elf.is_file() {
        bail!("kernel build succeeded but {} is missing", elf.display());
    }
    *done = Some(elf.clone());
    Ok(elf)
}
