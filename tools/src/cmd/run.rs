//! `axiom run`: build the kernel, boot it in QEMU (TCG), stream its serial
//! output, and exit 0 only if the kernel reported success.
//!
//! With `--prompt` or `--interactive` the kernel runs in inference mode: the
//! model (`--model FILE`, else the default one from `tools/fetch-model.sh`)
//! is packed into a disk image cached by content, attached as NVMe, and the
//! inference keys go on the kernel command line (docs/running.md). At the
//! end the answer assembled from the `@token` events is printed.
//!
//! Exit codes: 0 success, 1 the kernel failed, 124 timeout, 2 runner error.

use anyhow::{bail, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axiom_tools::infer::{self, InferKeys};
use axiom_tools::qemu::{self, Boot, Machine, QemuOptions, RunResult, SerialInput, Verdict};

use crate::pack::{pack, TypeChoice, TypeRules};

/// Default `--timeout` without and with inference (TCG decodes at about a
/// token per second or less).
const SELFTEST_TIMEOUT_S: u64 = 120;
const INFERENCE_TIMEOUT_S: u64 = 900;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Verify {
    First,
    Always,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Telemetry {
    Layer,
    Token,
    Off,
}

/// The inference options of `run` (also used by `sweep`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct InferArgs {
    /// GGUF model to pack and boot (cached as
    /// ${AXIOM_CACHE:-~/.cache/axiom}/images/<sha256>-v<N>.img) [default with
    /// --prompt/--interactive: the default model from tools/fetch-model.sh].
    #[arg(long, value_name = "FILE", conflicts_with = "disk")]
    pub model: Option<PathBuf>,
    /// Generate from this prompt (inference mode).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Tokens to generate [kernel default: 32].
    #[arg(long)]
    pub tokens: Option<u32>,
    /// Wrap the prompt in the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Sampling temperature [kernel default: 0 = greedy].
    #[arg(long)]
    pub temp: Option<f32>,
    /// Nucleus sampling mass [kernel default: 1.0 = off].
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Keep the K most likely tokens [kernel default: 0 = off].
    #[arg(long)]
    pub top_k: Option<u32>,
    /// RNG seed [kernel default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Memory for weights (globals + layer slots), e.g. 24M; less than the
    /// model makes the kernel stream layers.
    #[arg(long, value_name = "SIZE")]
    pub budget: Option<String>,
    /// Force streaming with exactly K layer slots.
    #[arg(long, value_name = "K")]
    pub slots: Option<u32>,
    /// A dedicated I/O core (on: the last CPU streams; off: every CPU computes).
    #[arg(long, value_enum)]
    pub io_core: Option<OnOff>,
    /// Check layer CRC32Cs on the first read or on every read.
    #[arg(long, value_enum)]
    pub verify: Option<Verify>,
    /// Per-layer or per-token timing events, or none.
    #[arg(long, value_enum)]
    pub telemetry: Option<Telemetry>,
    /// Context length [kernel default: 512].
    #[arg(long)]
    pub ctx: Option<u32>,
    /// Chat over the serial line: type prompts (one per line), `/quit` or
    /// end of input (Ctrl-D) ends.
    #[arg(long)]
    pub interactive: bool,
}

impl InferArgs {
    pub fn keys(&self) -> InferKeys {
        InferKeys {
            prompt: self.prompt.clone(),
            interactive: self.interactive,
            chat: self.chat,
            tokens: self.tokens,
            temp: self.temp,
            top_p: self.top_p,
            top_k: self.top_k,
            seed: self.seed,
            budget: self.budget.clone(),
            slots: self.slots,
            io_core: self.io_core.map(|v| v == OnOff::On),
            verify: self.verify.map(|v| if v == Verify::First { "first" } else { "always" }.to_string()),
            telemetry: self.telemetry.map(|t| match t {
                Telemetry::Layer => "layer",
                Telemetry::Token => "token",
                Telemetry::Off => "off",
            }
            .to_string()),
            ctx: self.ctx,
        }
    }
}

/// The disk to attach: `--disk` as it is, else the cached packed image of
/// `--model` (or of the default model when inferring), else none.
pub fn resolve_disk(model: Option<&Path>, disk: Option<&Path>, inference: bool) -> Result<Option<PathBuf>> {
    if let Some(d) = disk {
        return Ok(Some(d.to_path_buf()));
    }
    let model = match model {
        Some(m) => m.to_path_buf(),
        None if inference => infer::default_model()?,
        None => return Ok(None),
    };
    if !model.is_file() {
        bail!("--model {}: no such file", model.display());
    }
    Ok(Some(infer::cached_image(&model, |src, out| {
        pack(src, out, &TypeRules { matrices: TypeChoice::Keep, embeddings: TypeChoice::Keep }).map(|_| ())
    })?))
}

/// Prints each answer of a finished run (the text of its `@token` events)
/// and the speed its `@summary` reports.
pub fn print_answers(result: &RunResult) {
    let answers = infer::answers(result);
    let mut out = std::io::stdout().lock();
    for (n, a) in answers.iter().enumerate() {
        let label = if answers.len() > 1 { format!("answer {}", n + 1) } else { "answer".to_string() };
        let _ = writeln!(out, "--- {label} ({} tokens):\n{}", a.ids.len(), a.text);
        if let Some(s) = &a.summary {
            let num = |k: &str| s.f64(k).map_or("?".to_string(), |v| format!("{v:.2}"));
            let _ = writeln!(
                out,
                "--- {} mode, {} compute cores: prefill {} tok/s, decode {} tok/s, first token after {} ms",
                s.str("mode").unwrap_or("?"),
                s.u64("compute_cores").map_or("?".to_string(), |v| v.to_string()),
                num("prefill_tok_s"),
                num("decode_tok_s"),
                num("ttft_ms")
            );
        }
    }
    let _ = out.flush();
}

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
    /// Seconds before QEMU is killed and the run reported as a timeout
    /// [default: 120, or 900 with --prompt/--interactive].
    #[arg(long)]
    pub timeout: Option<u64>,
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
    #[command(flatten)]
    pub infer: InferArgs,
    /// Extra QEMU arguments, after `--`.
    #[arg(last = true)]
    pub qemu_args: Vec<String>,
}

impl Args {
    /// The QEMU options; packs the model into its cached image if needed.
    pub fn options(&self) -> Result<QemuOptions> {
        if self.smp == 0 || self.smp > 255 {
            bail!("--smp must be between 1 and 255");
        }
        let keys = self.infer.keys();
        let inference = keys.is_inference();
        if self.infer.model.is_some() && !inference {
            bail!("--model needs --prompt or --interactive (or use --disk to attach an image to a self-test)");
        }
        let cmdline = infer::join_cmdline(&[&keys.cmdline(), &self.cmdline]);
        if cmdline.len() > infer::CMDLINE_MAX {
            bail!(
                "the kernel command line is {} bytes (percent-encoded), more than the kernel's {}: shorten the prompt",
                cmdline.len(),
                infer::CMDLINE_MAX
            );
        }
        let disk = resolve_disk(self.infer.model.as_deref(), self.disk.as_deref(), inference)?;
        let timeout = self.timeout.unwrap_or(if inference { INFERENCE_TIMEOUT_S } else { SELFTEST_TIMEOUT_S });
        Ok(QemuOptions {
            smp: self.smp,
            mem: self.mem.clone(),
            machine: self.machine,
            cmdline,
            boot: match (self.iso, self.uefi) {
                (_, true) => Boot::IsoUefi,
                (true, false) => Boot::IsoBios,
                _ => Boot::Direct,
            },
            xapic: self.xapic,
            no_acpi: self.no_acpi,
            disk,
            timeout: Duration::from_secs(timeout.max(1)),
            extra_args: self.qemu_args.clone(),
            serial_input: if self.infer.interactive { SerialInput::Forward } else { SerialInput::None },
        })
    }
}

pub fn main(args: Args) -> Result<i32> {
    let opts = args.options()?;
    let kernel = qemu::build_kernel()?;
    // Multiboot hands the kernel "<path> <cmdline>": the path counts too.
    let seen = kernel.display().to_string().len() + 1 + opts.cmdline.len();
    if opts.boot == Boot::Direct && seen > infer::CMDLINE_MAX {
        bail!(
            "the kernel would see a {seen}-byte command line ({} for the kernel's path), more than its {}: shorten the prompt",
            seen - opts.cmdline.len(),
            infer::CMDLINE_MAX
        );
    }
    if opts.boot != Boot::Direct {
        let iso = qemu::build_iso(&kernel, &opts.cmdline)?;
        eprintln!("axiom run: ISO {}", iso.display());
    }
    let quiet = args.quiet;
    let interactive = args.infer.interactive;
    // In a chat, each answer is printed as its @summary arrives.
    let mut answer = String::new();
    let mut echo = |line: &str| {
        let mut out = std::io::stdout().lock();
        if !quiet {
            let _ = writeln!(out, "{line}");
        }
        if interactive {
            match qemu::Event::parse(line) {
                Some(Ok(e)) if e.name == "token" => answer.push_str(e.str("text").unwrap_or("")),
                Some(Ok(e)) if e.name == "summary" => {
                    let _ = writeln!(out, "--- answer:\n{}\n---", std::mem::take(&mut answer));
                }
                _ => {}
            }
        }
        let _ = out.flush();
    };
    if args.infer.interactive {
        eprintln!("axiom run: interactive: type a prompt per line once @ready appears; /quit or Ctrl-D ends");
    }
    let result = qemu::run_kernel(&kernel, &opts, &mut echo)?;
    if args.infer.keys().is_inference() && !interactive {
        print_answers(&result);
    }
    let verdict = result.verdict();
    eprintln!("axiom run: {verdict}");
    Ok(match verdict {
        Verdict::Success => 0,
        Verdict::KernelFailed(_) => 1,
        Verdict::Timeout(_) => 124,
        Verdict::QemuFailed(_) => 2,
    })
}
