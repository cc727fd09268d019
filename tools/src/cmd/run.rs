//! `axiom run`: build the kernel, boot it in QEMU (TCG), stream its serial
//! output, and exit 0 only if the kernel reported success.
//!
//! Exit codes: 0 success, 1 the kernel failed, 124 timeout, 2 runner error.

use anyhow::{bail, Result};
use std::io::Write;
use std::time::Duration;

use axiom_tools::qemu::{self, Boot, Machine, QemuOptions, Verdict};

#[derive(clap::Args)]
pub struct Args {
    /// Number of CPUs.
    #[arg(long, default_value_t = 2)]
    pub smp: u32,
    /// Guest RAM (QEMU -m syntax: 512M, 2G, ...).
    #[arg(long, default_value = "1G")]
    pub mem: String,
    /// Machine type.
    #[arg(long, value_enum, default_value_t = Machine::Pc)]
    pub machine: Machine,
    /// Kernel command line, e.g. "selftest=smp rounds=1000".
    #[arg(long, default_value = "")]
    pub cmdline: String,
    /// Boot through a GRUB ISO (Multiboot2) on SeaBIOS.
    #[arg(long)]
    pub iso: bool,
    /// Boot the GRUB ISO under UEFI (OVMF).
    #[arg(long)]
    pub uefi: bool,
    /// Seconds before QEMU is killed and the run reported as a timeout.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// xAPIC instead of x2APIC (`-cpu max,-x2apic`).
    #[arg(long)]
    pub xapic: bool,
    /// No ACPI tables (the kernel then runs on the BSP alone).
    #[arg(long)]
    pub no_acpi: bool,
    /// Attach a raw disk image as an NVMe namespace (O_DIRECT, see docs/nvme.md).
    #[arg(long, value_name = "FILE")]
    pub disk: Option<std::path::PathBuf>,
    /// Do not echo the serial output (the verdict is still printed).
    #[arg(long)]
    pub quiet: bool,
    /// Extra QEMU arguments, after `--`.
    #[arg(last = true)]
    pub qemu_args: Vec<String>,
}

impl Args {
    pub fn options(&self) -> Result<QemuOptions> {
        if self.smp == 0 || self.smp > 255 {
            bail!("--smp must be between 1 and 255");
        }
        Ok(QemuOptions {
            smp: self.smp,
            mem: self.mem.clone(),
            machine: self.machine,
            cmdline: self.cmdline.clone(),
            boot: match (self.iso, self.uefi) {
                (_, true) => Boot::IsoUefi,
                (true, false) => Boot::IsoBios,
                _ => Boot::Direct,
            },
            xapic: self.xapic,
            no_acpi: self.no_acpi,
            disk: self.disk.clone(),
            timeout: Duration::from_secs(self.timeout.max(1)),
            extra_args: self.qemu_args.clone(),
        })
    }
}

pub fn main(args: Args) -> Result<i32> {
    let opts = args.options()?;
    let kernel = qemu::build_kernel()?;
    if opts.boot != Boot::Direct {
        let iso = qemu::build_iso(&kernel, &opts.cmdline)?;
        eprintln!("axiom run: ISO {}", iso.display());
    }
    let quiet = args.quiet;
    let mut echo = |line: &str| {
        if !quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    };
    let result = qemu::run_kernel(&kernel, &opts, &mut echo)?;
    let verdict = result.verdict();
    eprintln!("axiom run: {verdict}");
    Ok(match verdict {
        Verdict::Success => 0,
        Verdict::KernelFailed(_) => 1,
        Verdict::Timeout(_) => 124,
        Verdict::QemuFailed(_) => 2,
    })
}
