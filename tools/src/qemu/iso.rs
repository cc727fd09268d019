//! GRUB ISO images (`grub-mkrescue`): one image boots on BIOS and UEFI via
//! GRUB's `multiboot2` command, which also sets the graphics mode the
//! kernel's header asks for (the framebuffer console). The runner's ISOs
//! boot one command line at once; `axiom iso` writes the box's ISO with a
//! menu ("chat", "self-test smp", "self-test nvme"): the file that goes on a
//! USB stick (docs/bare-metal.md).

use anyhow::{bail, Context, Result};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::build::kernel_target_dir;

/// One GRUB menu entry: a title and the kernel command line it boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MenuEntry {
    pub title: String,
    pub cmdline: String,
}

impl MenuEntry {
    pub fn new(title: &str, cmdline: &str) -> MenuEntry {
        MenuEntry { title: title.into(), cmdline: cmdline.into() }
    }
}

/// The menu of the box's ISO: chat first (the default), then the two
/// self-tests that check a new machine; `extra` is appended to each
/// command line.
pub fn box_menu(extra: &str) -> Vec<MenuEntry> {
    let with = |base: &str| if extra.is_empty() { base.to_string() } else { format!("{base} {extra}") };
    vec![
        MenuEntry { title: "chat".into(), cmdline: with("interactive=1 chat=1") },
        MenuEntry { title: "self-test smp".into(), cmdline: with("selftest=smp") },
        MenuEntry { title: "self-test nvme".into(), cmdline: with("selftest=nvme") },
    ]
}

/// A command line GRUB's menu syntax carries unchanged.
fn check_cmdline(cmdline: &str) -> Result<()> {
    if cmdline.contains(['\n', '"', '\'', ';', '$', '\\', '{', '}']) {
        bail!("kernel command line for the ISO may not contain newlines, quotes, ';', '$', braces or '\\\\'");
    }
    Ok(())
}

/// A GRUB configuration with `entries` (the first is the default), booted
/// after `timeout_s` seconds (0: at once, no menu shown). `all_video`
/// gives `multiboot2` the VBE (BIOS) and GOP (UEFI) drivers it sets the
/// framebuffer mode with.
pub fn grub_menu_cfg(entries: &[MenuEntry], timeout_s: u32) -> Result<String> {
    if entries.is_empty() {
        bail!("a GRUB menu needs at least one entry");
    }
    let mut cfg = format!("insmod all_video\nset timeout={timeout_s}\nset default=0\n");
    for e in entries {
        check_cmdline(&e.cmdline)?;
        if e.title.contains(['"', '\n', '$', '\\']) {
            bail!("GRUB menu title {:?} may not contain quotes, '$', '\\\\' or newlines", e.title);
        }
        cfg.push_str(&format!("\nmenuentry \"{}\" {{\n    multiboot2 /boot/axiom-kernel {}\n    boot\n}}\n", e.title, e.cmdline));
    }
    Ok(cfg)
}

/// The runner's configuration: boot the kernel at once with `cmdline`.
pub fn grub_cfg(cmdline: &str) -> Result<String> {
    grub_menu_cfg(&[MenuEntry::new("AXIOM", cmdline)], 0)
}

/// Build (or reuse) an ISO holding `kernel` and a GRUB menu that boots it
/// with `cmdline`. Returns the ISO's path.
pub fn build_iso(kernel: &Path, cmdline: &str) -> Result<PathBuf> {
    let cfg = grub_cfg(cmdline)?;
    let elf = std::fs::read(kernel).with_context(|| format!("reading {}", kernel.display()))?;
    let mut h = DefaultHasher::new();
    elf.hash(&mut h);
    cfg.hash(&mut h);
    let dir = kernel_target_dir().join("iso").join(format!("{:016x}", h.finish()));
    let iso = dir.join("axiom.iso");
    if iso.is_file() {
        return Ok(iso);
    }
    write_iso(&elf, &cfg, &dir, &iso)?;
    Ok(iso)
}

/// Writes an ISO of the kernel ELF `elf` with GRUB configuration `cfg` to
/// `out`, staging its files under `work` (created if needed).
pub fn write_iso(elf: &[u8], cfg: &str, work: &Path, out: &Path) -> Result<()> {
    let root = work.join("root");
    std::fs::create_dir_all(root.join("boot/grub")).with_context(|| format!("creating {}", root.display()))?;
    std::fs::write(root.join("boot/axiom-kernel"), elf)?;
    std::fs::write(root.join("boot/grub/grub.cfg"), cfg)?;
    let tmp = work.join("axiom.iso.tmp");
    let result = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(&tmp)
        .arg(&root)
        .output()
        .context("running grub-mkrescue (install grub-pc-bin, grub-efi-amd64-bin, xorriso and mtools: tools/setup.sh)")?;
    if !result.status.success() {
        bail!("grub-mkrescue failed ({}):\n{}", result.status, String::from_utf8_lossy(&result.stderr));
    }
    std::fs::rename(&tmp, out).or_else(|_| std::fs::copy(&tmp, out).map(|_| ())).with_context(|| format!("writing {}", out.display()))?;
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_cfg_boots_multiboot2_with_cmdline() {
        let cfg = grub_cfg("selftest=smp rounds=10").unwrap();
        assert!(cfg.contains("multiboot2 /boot/axiom-kernel selftest=smp rounds=10\n"));
        assert!(cfg.starts_with("insmod all_video\nset timeout=0\n"));
    }

    #[test]
    fn the_box_menu_offers_chat_and_the_self_tests() {
        let cfg = grub_menu_cfg(&box_menu("tokens=64"), 5).unwrap();
        assert!(cfg.contains("set timeout=5\nset default=0\n"));
        let titles: Vec<&str> = cfg.lines().filter_map(|l| l.strip_prefix("menuentry \"")).map(|l| l.split('"').next().unwrap()).collect();
        assert_eq!(titles, ["chat", "self-test smp", "self-test nvme"]);
        assert!(cfg.contains("multiboot2 /boot/axiom-kernel interactive=1 chat=1 tokens=64\n"));
        assert!(cfg.contains("multiboot2 /boot/axiom-kernel selftest=nvme tokens=64\n"));
        assert_eq!(box_menu("")[1].cmdline, "selftest=smp");
    }

    #[test]
    fn rejects_cmdline_that_would_break_the_menu() {
        let err = build_iso(Path::new("/nonexistent"), "a=1\n}").unwrap_err();
        assert!(err.to_string().contains("may not contain"));
        assert!(grub_menu_cfg(&box_menu("x=${y}"), 5).is_err());
        assert!(grub_menu_cfg(&[], 5).is_err());
    }
}
