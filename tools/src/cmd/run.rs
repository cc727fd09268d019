//! `axiom run`: build the kernel, boot it in QEMU (TCG), stream its serial
//! output, and exit 0 only if the kernel reported success.
//!
//! With `--prompt` or `--interactive` the kernel runs in inference mode: the
//! model (`--model FILE`, else the default one from `tools/fetch-model.sh`)
//! is packed into a disk image cached by content, attached as NVMe, and the
//! inference keys go on the kernel command line (docs/running.md). At the
//! end the answer assembled from the `@token` events is printed. Without
//! `--smp`, an inference run boots one compute vCPU per host core plus the
//! I/O core ([`inference_smp`]); `--show progress` replaces the raw serial
//! lines with a short display of the run's phases and the streamed answer.
//!
//! Exit codes: 0 success, 1 the kernel failed, 124 timeout, 2 runner error.

use anyhow::{bail, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axiom_proto::cmdline::{keys, KeySpec, Type};
use axiom_proto::telemetry::events::{self, Boot as BootEvent, Load, LoadProgress, Prompt, Ready, Summary, Token};
use axiom_proto::telemetry::Event as _;
use axiom_tools::infer::{self, KernelArgs};
use axiom_tools::qemu::{self, Boot, Machine, QemuOptions, RunResult, SerialInput, Verdict};

use crate::pack::{pack, PackProgress, ProgressLine, TypeChoice, TypeRules};

/// Default `--timeout` without and with inference (TCG decodes at about a
/// token per second or less).
const SELFTEST_TIMEOUT_S: u64 = 120;
const INFERENCE_TIMEOUT_S: u64 = 900;

/// CPUs a self-test boots without `--smp`.
const SELFTEST_SMP: u32 = 2;
/// The most CPUs `--smp` accepts.
const MAX_SMP: u32 = 255;

/// The CPUs an inference run boots without `--smp`, on a host with
/// `host_cores` logical cores: one compute vCPU per host core, plus the I/O
/// core, which parks when it has nothing to read (with `io_core` off, every
/// CPU computes: one per host core). TCG runs each vCPU on a host thread, so
/// more compute vCPUs than host cores share cores and the lockstep barriers
/// wait on descheduled vCPUs; fewer leave a core unused. Measured on a
/// 2-core host (docs/running.md, "Choosing the CPU count"): with the host
/// otherwise idle, 3 CPUs decode 1.4x as fast as 2 and about as fast as 4
/// (when other work takes host time, 2 are steadier; `--smp` chooses).
pub fn inference_smp(host_cores: u32, io_core: bool) -> u32 {
    let compute = host_cores.max(1);
    if io_core { compute.saturating_add(1).min(MAX_SMP) } else { compute.min(MAX_SMP) }
}

/// The host's logical cores available to this process.
pub fn host_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as u32
}

/// What `axiom run` prints of the serial output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Show {
    /// Every serial line as it arrives.
    #[default]
    Lines,
    /// The kernel's text lines, one line per phase (boot, model, load,
    /// prompt), the answer as it is generated, warnings and errors; per-core
    /// timings and other telemetry are left out.
    Progress,
}

/// The inference options of `run` (also used by `sweep`): `--model FILE`,
/// and one flag for each key of the kernel's key table that names one
/// (`axiom_proto::cmdline::keys`: a key added there is a flag here, with its
/// help and default, checked as the kernel checks it).
#[derive(Clone, Debug, Default)]
pub struct InferArgs {
    /// The GGUF model to pack and boot.
    pub model: Option<PathBuf>,
    /// The kernel keys the flags set.
    pub keys: KernelArgs,
}

impl InferArgs {
    pub fn interactive(&self) -> bool {
        self.keys.get(&keys::INTERACTIVE).is_some_and(|v| v != "0" && v != "off")
    }
}

/// The keys that are `axiom run` flags.
fn flagged_keys() -> impl Iterator<Item = &'static KeySpec> {
    keys::KEYS.iter().copied().filter(|k| k.flag.is_some())
}

/// The clap id of a key's flag (`key.NAME`: the kernel's `model` key must
/// not clash with the runner's own `--model FILE`).
fn arg_id(key: &KeySpec) -> String {
    format!("key.{}", key.name)
}

/// A switch (`--chat`) for a flag key that is off unless given; a value otherwise.
fn is_switch(key: &KeySpec) -> bool {
    matches!(key.ty, Type::Flag { default: false })
}

fn flag_arg(key: &'static KeySpec) -> clap::Arg {
    let long = key.flag.expect("flagged keys only");
    let encoded = if matches!(key.ty, Type::Text { .. }) { ", percent-encoded by the runner" } else { "" };
    let help = match key.default_description() {
        Some(d) if !is_switch(key) => format!("{} [kernel default: {d}] (kernel key {}{encoded})", key.help, key.name),
        _ => format!("{} (kernel key {}{encoded})", key.help, key.name),
    };
    let arg = clap::Arg::new(arg_id(key)).long(long).help(help);
    if is_switch(key) {
        return arg.action(clap::ArgAction::SetTrue);
    }
    arg.value_name(key.ty.placeholder().to_string()).value_parser(move |value: &str| -> Result<String, String> {
        KernelArgs::default().set(key, value).map(|()| value.to_string()).map_err(|e| e.to_string())
    })
}

impl clap::Args for InferArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let model = clap::Arg::new("model")
            .long("model")
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .conflicts_with("disk")
            .help("GGUF model to pack and boot: a file, or a name tools/fetch-model.sh knows (smollm2-135m, gemma3-270m), fetched on first use (packed image cached as ${AXIOM_CACHE:-~/.cache/axiom}/images/<sha256>-v<N>.img) [default with --prompt/--interactive: the default model from tools/fetch-model.sh]");
        flagged_keys().fold(cmd.arg(model), |cmd, key| cmd.arg(flag_arg(key)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for InferArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut args = InferArgs::default();
        args.update_from_arg_matches(m)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        if let Some(model) = m.get_one::<PathBuf>("model") {
            self.model = Some(model.clone());
        }
        for key in flagged_keys() {
            let id = arg_id(key);
            let value = if is_switch(key) { m.get_flag(&id).then(|| "1".to_string()) } else { m.get_one::<String>(&id).cloned() };
            if let Some(v) = value {
                self.keys.set(key, &v).map_err(|e| clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{e:#}\n")))?;
            }
        }
        Ok(())
    }
}

/// The disk to attach: `--disk` as it is, else the cached packed image of
/// `--model` (or of the default model when inferring), else none.
pub fn resolve_disk(model: Option<&Path>, disk: Option<&Path>, inference: bool) -> Result<Option<PathBuf>> {
    if let Some(d) = disk {
        return Ok(Some(d.to_path_buf()));
    }
    let model = match model {
        Some(m) => infer::resolve_model(m)?,
        None if inference => infer::default_model()?,
        None => return Ok(None),
    };
    if !model.is_file() {
        bail!("--model {}: no such file", model.display());
    }
    Ok(Some(infer::cached_image(&model, |src, out| {
        let mut line = ProgressLine::new("pack");
        let rules = TypeRules { matrices: TypeChoice::Keep, embeddings: TypeChoice::Keep };
        let packed = pack(src, out, &rules, &mut |p| line.update(p));
        line.finish(if packed.is_ok() { "done" } else { "failed" });
        packed.map(|_| ())
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
            let _ = writeln!(out, "{}", speed_line(s));
        }
    }
    let _ = out.flush();
}

/// "--- resident mode, 2 compute cores: prefill 2.11 tok/s, ..." from a `@summary`.
fn speed_line(s: &Summary) -> String {
    format!(
        "--- {} mode, {} compute cores: prefill {:.2} tok/s, decode {:.2} tok/s, first token after {:.2} ms",
        s.mode, s.compute_cores, s.prefill_tok_s, s.decode_tok_s, s.ttft_ms
    )
}

/// `--show progress`: turns serial lines into a short display (see [`Show::Progress`]).
#[derive(Default)]
struct ProgressDisplay {
    /// An answer is being printed token by token (its line is open).
    in_answer: bool,
    /// The resident load's progress line (on stderr, like packing's).
    load: Option<ProgressLine>,
}

/// Telemetry `--show progress` leaves out: per-CPU roles, the memory plan
/// (the kernel prints it as text too), per-core and I/O timings, the end.
const QUIET_EVENTS: &[&str] =
    &[events::Cpu::NAME, events::MemPlan::NAME, events::CoreToken::NAME, events::Layer::NAME, events::Io::NAME, events::Done::NAME];

impl ProgressDisplay {
    /// What to print for one serial line (possibly nothing); tokens are
    /// printed without a line break.
    fn render(&mut self, line: &str) -> String {
        let event = match qemu::Event::parse(line) {
            Some(Ok(e)) => e,
            // Text for humans, and lines that look like events but do not parse.
            _ => return self.own_line(line.to_string()),
        };
        const MIB: f64 = (1 << 20) as f64;
        if let Some(t) = event.read::<Token>() {
            if self.in_answer {
                t.text.into_owned()
            } else {
                self.in_answer = true;
                format!("answer: {}", t.text)
            }
        } else if let Some(s) = event.read::<Summary>() {
            self.own_line(speed_line(&s))
        } else if let Some(b) = event.read::<BootEvent>() {
            self.own_line(format!("boot: {} CPUs online ({})", b.cpus_online, b.apic))
        } else if let Some(m) = event.read::<events::Model>() {
            self.own_line(format!("model: {}, {} layers, {:.1} MiB", m.arch, m.layers, m.model_bytes as f64 / MIB))
        } else if let Some(p) = event.read::<LoadProgress>() {
            let progress = PackProgress { globals_done: true, layers_done: p.layer as usize, layers: p.layers as usize, bytes: p.bytes, total_bytes: p.total_bytes };
            self.load.get_or_insert_with(|| ProgressLine::new("load")).update(progress);
            String::new()
        } else if let Some(l) = event.read::<Load>() {
            if let Some(mut progress) = self.load.take() {
                progress.clear();
            }
            self.own_line(format!(
                "loaded {} layers ({:.1} MiB, {}) in {:.1} s, {} MiB/s",
                l.layers,
                l.bytes as f64 / MIB,
                l.mode,
                l.ms / 1000.0,
                l.mib_per_s
            ))
        } else if let Some(p) = event.read::<Prompt>() {
            let reused = if p.reused_tokens > 0 { format!(" ({} new, {} reused from earlier turns)", p.new_tokens, p.reused_tokens) } else { String::new() };
            self.own_line(format!("prompt: {} tokens{reused}, generating up to {}", p.tokens, p.max_new))
        } else if event.read::<Ready>().is_some() {
            self.own_line("ready: type a prompt per line (one conversation); /reset starts over, /stats, /quit or Ctrl-D ends".to_string())
        } else if QUIET_EVENTS.contains(&event.name.as_str()) {
            String::new()
        } else {
            // Errors, warnings and anything new, as the kernel wrote them.
            self.own_line(line.to_string())
        }
    }

    /// `text` on a line of its own, closing an answer being streamed.
    fn own_line(&mut self, text: String) -> String {
        let start = if std::mem::take(&mut self.in_answer) { "\n" } else { "" };
        format!("{start}{text}\n")
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Number of CPUs [default: with --prompt/--interactive, one compute
    /// CPU per host core plus the I/O core; else 2].
    #[arg(long)]
    pub smp: Option<u32>,
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
    /// Every serial line, or a short progress display.
    #[arg(long, value_enum, default_value_t = Show::Lines)]
    pub show: Show,
    #[command(flatten)]
    pub infer: InferArgs,
    /// Extra QEMU arguments, after `--`.
    #[arg(last = true)]
    pub qemu_args: Vec<String>,
}

impl Args {
    /// The CPUs to boot: `--smp`, else the default for the run's mode with
    /// a line saying why.
    pub fn smp(&self) -> (u32, Option<String>) {
        if let Some(n) = self.smp {
            return (n, None);
        }
        if !self.infer.keys.is_inference() {
            return (SELFTEST_SMP, None);
        }
        let cores = host_cores();
        let io_core = self.infer.keys.get(&keys::IO_CORE) != Some("off");
        let n = inference_smp(cores, io_core);
        let plural = |n: u32| if n == 1 { "" } else { "s" };
        let why = if io_core {
            format!(
                "{n} CPUs: {} compute core{} (the host has {cores} core{}) + the I/O core, which parks when idle; --smp N to choose (fewer on a busy host)",
                n - 1,
                plural(n - 1),
                plural(cores)
            )
        } else {
            format!("{n} CPU{}: one compute core per host core (--io-core off); --smp N to choose", plural(n))
        };
        (n, Some(why))
    }

    /// The QEMU options; packs the model into its cached image if needed.
    pub fn options(&self) -> Result<QemuOptions> {
        let smp = self.smp().0;
        if smp == 0 || smp > MAX_SMP {
            bail!("--smp must be between 1 and {MAX_SMP}");
        }
        let keys = &self.infer.keys;
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
            smp,
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
            serial_input: if self.infer.interactive() { SerialInput::Forward } else { SerialInput::None },
            monitor: None,
            iso: None,
            usb_stick: false,
        })
    }
}

pub fn main(args: Args) -> Result<i32> {
    if let (_, Some(why)) = args.smp() {
        eprintln!("axiom run: {why}");
    }
    let opts = args.options()?;
    let progress = args.show == Show::Progress && !args.quiet;
    if progress {
        eprintln!("axiom run: building the kernel");
    }
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
    let interactive = args.infer.interactive();
    // In a chat, each answer is printed as its @summary arrives.
    let mut answer = String::new();
    let mut display = ProgressDisplay::default();
    let mut echo = |line: &str| {
        let mut out = std::io::stdout().lock();
        if progress {
            // Answers stream here, and @summary prints the speed.
            let _ = write!(out, "{}", display.render(line));
            let _ = out.flush();
            return;
        }
        if !quiet {
            let _ = writeln!(out, "{line}");
        }
        if let (true, Some(Ok(e))) = (interactive, qemu::Event::parse(line)) {
            if let Some(t) = e.read::<Token>() {
                answer.push_str(&t.text);
            } else if e.read::<Summary>().is_some() {
                let _ = writeln!(out, "--- answer:\n{}\n---", std::mem::take(&mut answer));
            }
        }
        let _ = out.flush();
    };
    if interactive {
        eprintln!("axiom run: interactive: type a prompt per line once @ready appears (one conversation: /reset starts over, /stats shows speeds); /quit or Ctrl-D ends");
    }
    let result = qemu::run_kernel(&kernel, &opts, &mut echo)?;
    if progress && display.in_answer {
        println!();
    }
    // The progress display printed each answer as it streamed.
    if args.infer.keys.is_inference() && !interactive && !progress {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axiom_proto::telemetry::events::CoreShare;

    #[test]
    fn inference_boots_a_compute_cpu_per_host_core_plus_the_io_core() {
        assert_eq!(inference_smp(2, true), 3);
        assert_eq!(inference_smp(1, true), 2);
        assert_eq!(inference_smp(16, true), 17);
        assert_eq!(inference_smp(2, false), 2);
        assert_eq!(inference_smp(0, true), 2, "an unknown core count counts as one");
        assert_eq!(inference_smp(1000, true), MAX_SMP);
        assert_eq!(inference_smp(1000, false), MAX_SMP);
    }

    #[test]
    fn progress_display_shows_phases_and_streams_the_answer() {
        let serial = [
            "AXIOM kernel 0.1.0 booting",
            r#"@boot {"cpus_found":3,"cpus_online":3,"cpus_disabled":0,"cpus_unanswered":0,"apic":"x2apic","tsc_mhz":2995.1,"tsc_source":"hpet","tsc_invariant":true,"boot":"multiboot1","acpi":true,"mem_usable_mib":1022,"mem_free_mib":950,"heap_mib":64,"largest_free_mib":880,"avx":true,"avx2":true,"fma":true,"avx512f":false,"xcr0":"0x7","cmdline":"prompt=x"}"#,
            r#"@cpu {"id":0,"apic_id":0,"role":"bsp"}"#,
            "loading 30 layers (63.6 MiB) into the weight pool ...",
            r#"@model {"arch":"llama","layers":30,"n_embd":576,"n_ff":1536,"n_heads":9,"n_kv_heads":3,"n_vocab":49152,"model_bytes":98598912,"header_bytes":1,"globals_bytes":1,"max_layer_bytes":1,"isa":"avx2","nsid":1,"offset":0,"region_bytes":98598912}"#,
            r#"@load_progress {"layer":12,"layers":30,"bytes":41811968,"total_bytes":96808960}"#,
            r#"@load {"mode":"resident","layers":30,"bytes":96808960,"ms":1738.4,"mib_per_s":53.1,"verified":31}"#,
            r#"@prompt {"answer":0,"turn":0,"tokens":5,"new_tokens":5,"reused_tokens":0,"max_new":2,"chat":false,"text":"The capital of France is"}"#,
            r#"@token {"i":0,"id":7042,"text":" Paris","us":474221}"#,
            r#"@token {"i":1,"id":30,"text":".","us":444944}"#,
            r#"@core_token {"tok":0,"core":0,"cpu":0,"stream_wait_us":0,"attn_us":41409,"ffn_us":1,"barrier_us":1,"busy_us":2,"embed_output_us":1,"outside_barrier_us":1}"#,
            &summary_line(),
            r#"@warning {"msg":"line too long"}"#,
            "@broken {not json",
            r#"@done {"status":"ok"}"#,
        ];
        let mut display = ProgressDisplay::default();
        let shown: String = serial.iter().map(|l| display.render(l)).collect();
        assert_eq!(
            shown,
            "AXIOM kernel 0.1.0 booting\n\
             boot: 3 CPUs online (x2apic)\n\
             loading 30 layers (63.6 MiB) into the weight pool ...\n\
             model: llama, 30 layers, 94.0 MiB\n\
             loaded 30 layers (92.3 MiB, resident) in 1.7 s, 53.1 MiB/s\n\
             prompt: 5 tokens, generating up to 2\n\
             answer:  Paris.\n\
             --- resident mode, 2 compute cores: prefill 2.50 tok/s, decode 2.25 tok/s, first token after 474.20 ms\n\
             @warning {\"msg\":\"line too long\"}\n\
             @broken {not json\n"
        );
        assert!(!display.in_answer);
    }

    /// A `@summary` as the kernel writes it (2 compute cores, 2.5 / 2.25 tok/s).
    fn summary_line() -> String {
        let shares = [CoreShare { cpu: 0, stream_wait: 0.0, attn: 1.0, ffn: 2.0, barrier: 0.5 }];
        let s = Summary {
            mode: "resident".into(),
            compute_cores: 2,
            io_core: false,
            io_core_idle: true,
            layers: "repacked".into(),
            prompt_tokens: 5,
            generated: 2,
            stop: "limit".into(),
            ttft_ms: 474.2,
            prefill_ms: 400.0,
            prefill_tok_s: 2.5,
            decode_tok_s: 2.25,
            decode_ms_median: Some(444.9),
            decode_ms_min: Some(444.9),
            decode_ms_max: Some(444.9),
            stream_wait_frac: 0.0,
            attn_frac: 0.3,
            ffn_frac: 0.6,
            barrier_frac: 0.1,
            bytes_per_token: 0,
            io_mib_per_s: 0.0,
            per_core_ms_per_token: shares[..].into(),
            text: " Paris.".into(),
        };
        let mut line = String::new();
        axiom_proto::telemetry::write_event(&s, &mut line).unwrap();
        line
    }

    #[test]
    fn an_error_closes_a_streaming_answer() {
        let mut display = ProgressDisplay::default();
        assert_eq!(display.render(r#"@token {"i":0,"id":1,"text":"Hel","us":1}"#), "answer: Hel");
        assert!(display.in_answer);
        assert_eq!(display.render(r#"@error {"msg":"layer 7: CRC32C mismatch"}"#), "\n@error {\"msg\":\"layer 7: CRC32C mismatch\"}\n");
        assert!(!display.in_answer);
    }
}
