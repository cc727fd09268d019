//! GRUB ISO images (`grub-mkrescue`): one image boots on BIOS and UEFI via
//! GRUB's `multiboot2` command. The same file is what goes on a USB stick
//! (docs/bare-metal.md).

use anyhow::{bail, Context, Result};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::build::kernel_target_dir;

/// The GRUB configuration: boot the kernel at once with `cmdline`.
pub fn grub_cfg(cmdline: &str) -> String {
    format!(
        "set timeout=0\nset default=0\n\nmenuentry \"AXIOM\" {{\n    multiboot2 /boot/axiom-kernel {cmdline}\n    boot\n}}\n"
    )
}

/// Build (or reuse) an ISO holding `kernel` and a GRUB menu that boots it
/// with `cmdline`. Returns the ISO's path.
pub fn build_iso(kernel: &Path, cmdline: &str) -> Result<PathBuf> {
    if cmdline.contains(['\n', '"', '\'', ';', '$', '\\']) {
        bail!("kernel command line for the ISO may not contain newlines, quotes, ';', '$' or '\\\\'");
    }
    let elf = std::fs::read(kernel).with_context(|| format!("reading {}", kernel.display()))?;
    let mut h = DefaultHasher::new();
    elf.hash(&mut h);
    cmdline.hash(&mut h);
    let dir = kernel_target_dir().join("iso").join(format!("{:016x}", h.finish()));
    let iso = dir.join("axiom.iso");
    if iso.is_file() {
        return Ok(iso);
    }
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("boot/grub")).with_context(|| format!("creating {}", root.display()))?;
    std::fs::write(root.join("boot/axiom-kernel"), &elf)?;
    std::fs::write(root.join("boot/grub/grub.cfg"), grub_cfg(cmdline))?;
    let tmp = dir.join("axiom.iso.tmp");
    let out = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(&tmp)
        .arg(&root)
        .output()
        .context("running grub-mkrescue (install grub-pc-bin, grub-efi-amd64-bin, xorriso and mtools: tools/setup.sh)")?;
    if !out.status.success() {
        bail!("grub-mkrescue failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    std::fs::rename(&tmp, &iso)?;
    Ok(iso)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_cfg_boots_multiboot2_with_cmdline() {
        let cfg = grub_cfg("selftest=smp rounds=10");
        assert!(cfg.contains("multiboot2 /boot/axiom-kernel selftest=smp rounds=10\n"));
        assert!(cfg.starts_with("set timeout=0\n"));
    }

    #[test]
    fn rejects_cmdline_that_would_break_the_menu() {
        let err = build_iso(Path::new("/nonexistent"), "a=1\n}").unwrap_err();
        assert!(err.to_string().contains("may not contain"));
    }
}
