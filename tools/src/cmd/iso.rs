//! `axiom iso --out axiom.iso [--cmdline ...] [--timeout S]`: the bootable
//! ISO for a real PC (BIOS or UEFI, from a USB stick or a CD): the kernel
//! and a GRUB menu with "chat" (the default: `interactive=1 chat=1`, on the
//! screen and keyboard, the model from the NVMe disk), "self-test smp" and
//! "self-test nvme". `--cmdline` is added to every entry. docs/bare-metal.md
//! walks through writing it to a stick.

use std::path::PathBuf;

use anyhow::{Context, Result};
use axiom_proto::cmdline::{keys, Cmdline};

use axiom_tools::qemu::{box_menu, build_kernel, grub_menu_cfg, kernel_target_dir, write_iso};

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the ISO.
    #[arg(long)]
    out: PathBuf,
    /// Kernel command-line keys added to every menu entry (e.g. "tokens=256 ctx=2048").
    #[arg(long, default_value = "")]
    cmdline: String,
    /// Seconds the GRUB menu waits before booting "chat".
    #[arg(long, default_value_t = 5)]
    timeout: u32,
}

pub fn main(args: Args) -> Result<i32> {
    let extra = args.cmdline.trim();
    let menu = box_menu(extra);
    // The kernel checks its keys at boot; checking them here finds a typo
    // (or a key the entry already sets) before the ISO is on a stick.
    for e in &menu {
        Cmdline::parse(&e.cmdline, keys::KEYS).map_err(|err| anyhow::anyhow!("menu entry \"{}\" ({}): {err}", e.title, e.cmdline))?;
    }
    let cfg = grub_menu_cfg(&menu, args.timeout)?;
    let kernel = build_kernel()?;
    let elf = std::fs::read(&kernel).with_context(|| format!("reading {}", kernel.display()))?;
    let work = kernel_target_dir().join("iso").join(format!("out-{}", std::process::id()));
    let written = write_iso(&elf, &cfg, &work, &args.out);
    let _ = std::fs::remove_dir_all(&work);
    written?;
    eprintln!("axiom iso: wrote {} (GRUB menu, default after {} s: {})", args.out.display(), args.timeout, menu[0].title);
    for e in &menu {
        eprintln!("  {:<15} {}", e.title, e.cmdline);
    }
    Ok(0)
}
