//! QEMU integration tests of the inference kernel (issue 5): the default
//! model, greedy, 16 tokens from a fixed prompt, resident and streaming, at
//! `--smp 2` (one compute core + the I/O core) and `--smp 4`, and with
//! `io_core=off` at `--smp 3` (every CPU computes): every run must print the
//! token ids `axiom generate` computes on the host, with `@cpu` roles that
//! match `io_core`. Then the bad
//! inputs, which must stop with a clear `@error` and a failing exit, never in
//! the runner's timeout: a flipped byte in layer 7 (CRC32C), a truncated
//! image, a disk that is not GGUF, a budget below two layers. Last, the
//! serial chat (`interactive=1`) answering two prompts after skipping an
//! overlong line and one that is not UTF-8.
//!
//! The packed image is built once (in the image cache that `axiom run` uses);
//! QEMU runs are serialized (the host may have two cores). Each test prints
//! the serial log, which the harness shows when the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axiom_engine::gguf::Gguf;
use axiom_engine::image::PackedLayout;
use axiom_proto::cmdline::keys;
use axiom_proto::telemetry::events::{CoreToken, Cpu, Error, Io, Load, LoadProgress, MemPlan, Model, Prompt, Ready, Summary, Token, Warning};
use axiom_tools::infer::{self, KernelArgs};
use axiom_tools::qemu::{self, QemuOptions, RunResult, SerialInput, Verdict, EXIT_FAILURE_STATUS};

const PROMPT: &str = "The capital of France is";
const TOKENS: u32 = 16;
/// A run of 16 tokens takes 15-45 s under TCG on a 2-core host; this leaves
/// a slower CI machine room while a hang costs minutes, not the CI's hour.
const GENERATE_TIMEOUT: Duration = Duration::from_secs(300);
/// The long-prompt run prefills 141 tokens under TCG: measured 578-841 s on a
/// 2-core host at load average 9-20 (a quiet host is far faster).
const LONG_TIMEOUT: Duration = Duration::from_secs(1200);
/// Bad inputs stop within seconds (header checks, or one layer's CRC).
const FAILURE_TIMEOUT: Duration = Duration::from_secs(120);

static QEMU: Mutex<()> = Mutex::new(());

fn axiom() -> Command {
    Command::new(env!("CARGO_BIN_EXE_axiom"))
}

fn model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(axiom_testkit::default_model)
}

/// The packed default model, from the same cache `axiom run` uses.
fn image() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        infer::cached_image(model(), |src, out| {
            let status = axiom().arg("pack").arg(src).arg(out).status()?;
            anyhow::ensure!(status.success(), "axiom pack failed ({status})");
            Ok(())
        })
        .expect("packing the default model")
    })
}

fn layout() -> &'static PackedLayout {
    static LAYOUT: OnceLock<PackedLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let bytes = std::fs::read(image()).unwrap();
        let g = Gguf::parse(&bytes).expect("the packed image parses");
        PackedLayout::from_gguf(&g).expect("the packed image has an extent table")
    })
}

/// The host engine's greedy token ids for [`PROMPT`] (`axiom generate`
/// prints them in its final statistics line on stderr).
fn host_ids() -> &'static [u32] {
    static IDS: OnceLock<Vec<u32>> = OnceLock::new();
    IDS.get_or_init(|| {
        let out = axiom()
            .args(["generate", "--prompt", PROMPT, "--temp", "0", "--tokens", &TOKENS.to_string(), "--model"])
            .arg(model())
            .output()
            .expect("running axiom generate");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "axiom generate failed:\n{stderr}");
        let stats: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap_or("")).expect("stats JSON line");
        let ids: Vec<u32> = stats["ids"].as_array().expect("ids").iter().map(|v| v.as_u64().unwrap() as u32).collect();
        println!("host ids: {ids:?} ({:?})", String::from_utf8_lossy(&out.stdout));
        assert!(!ids.is_empty());
        ids
    })
}

/// A scratch directory beside the kernel build (a real filesystem: QEMU
/// opens disks with O_DIRECT, which tmpfs refuses).
fn scratch(name: &str) -> PathBuf {
    let dir = qemu::kernel_target_dir().with_file_name("infer-test");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn args() -> KernelArgs {
    KernelArgs::default().with(&keys::PROMPT, PROMPT).with(&keys::TOKENS, TOKENS).with(&keys::TEMP, 0.0)
}

fn boot(smp: u32, args: &KernelArgs, disk: &Path, timeout: Duration, input: SerialInput) -> RunResult {
    let opts = QemuOptions {
        smp,
        cmdline: args.cmdline(),
        disk: Some(disk.to_path_buf()),
        timeout,
        serial_input: input,
        ..Default::default()
    };
    let _serial = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let kernel = qemu::build_kernel().expect("kernel builds");
    println!("--- smp {smp}, disk {}, cmdline: {}", disk.display(), opts.cmdline);
    let start = Instant::now();
    let result = qemu::run_kernel(&kernel, &opts, &mut |line| println!("{line}")).expect("QEMU runs");
    println!("--- verdict after {:.1} s: {}", start.elapsed().as_secs_f64(), result.verdict());
    assert!(!result.timed_out, "the run hit the runner's timeout ({} s): the kernel hung", timeout.as_secs());
    result
}

/// A run that generated: success, the host's ids, consistent telemetry.
fn generates_host_tokens(smp: u32, args: &KernelArgs, expect_mode: &str) -> RunResult {
    let expected = host_ids().to_vec();
    let r = boot(smp, args, image(), GENERATE_TIMEOUT, SerialInput::None);
    assert_eq!(r.verdict(), Verdict::Success);
    let answers = infer::answers(&r);
    assert_eq!(answers.len(), 1, "one answer");
    assert_eq!(answers[0].ids, expected, "kernel tokens (smp {smp}, {expect_mode}) differ from the host engine's");
    let idx: Vec<u64> = r.all::<Token>().map(|t| t.i).collect();
    assert_eq!(idx, (0..expected.len() as u64).collect::<Vec<_>>(), "@token i counts from 0");

    let m = r.first::<Model>().expect("@model");
    let layers = layout().layers.len() as u64;
    assert_eq!(m.layers, layers);
    let mem = r.first::<MemPlan>().expect("@mem");
    assert_eq!(mem.mode, expect_mode, "{mem:?}");
    let s = r.first::<Summary>().expect("@summary");
    assert_eq!(s.mode, expect_mode);
    assert_eq!(s.generated, expected.len() as u64);
    // The roles follow `io_core` (on by default from two CPUs): the last CPU
    // is the I/O core, or every CPU computes.
    let io_core = args.get(&keys::IO_CORE) != Some("off") && smp >= 2;
    let compute = smp as u64 - io_core as u64;
    assert_eq!(s.compute_cores, compute, "io_core {io_core}");
    assert_eq!(s.io_core, io_core && expect_mode == "streaming", "the I/O core streams only in streaming mode");
    let roles: Vec<String> = r.all::<Cpu>().map(|c| c.role.into_owned()).collect();
    let mut expect_roles = vec!["bsp"];
    expect_roles.extend((1..compute).map(|_| "compute"));
    if io_core {
        expect_roles.push("io");
    }
    assert_eq!(roles, expect_roles, "@cpu roles with io_core {io_core}");
    assert!(s.decode_tok_s > 0.0);
    assert!(r.first::<Prompt>().expect("@prompt").tokens > 0);
    // telemetry=token (the default): one @core_token per compute core per forward pass.
    let core_tokens = r.all::<CoreToken>().count() as u64;
    assert!(core_tokens > 0 && core_tokens.is_multiple_of(compute), "{core_tokens} @core_token events for {compute} cores");
    let cores: std::collections::BTreeSet<u64> = r.all::<CoreToken>().map(|e| e.cpu).collect();
    assert_eq!(cores.len() as u64, compute, "every compute core reports, the I/O core does not: {cores:?}");
    r
}

/// "1,2,3,...,50,": 141 tokens (one per digit and comma), more than one
/// attention chunk (128 positions), and short enough for TCG.
fn long_prompt() -> String {
    (1..=50).map(|i| format!("{i},")).collect()
}

/// A prompt longer than one attention chunk, decoded by two compute cores
/// (the one-token steps split the chunks between them) with the default F16
/// KV cache: the host engine's greedy tokens, and `@mem` reports the cache.
#[test]
fn long_prompt_smp2_matches_host() {
    const LONG_TOKENS: u32 = 4;
    let prompt = long_prompt();
    let out = axiom()
        .args(["generate", "--prompt", &prompt, "--temp", "0", "--tokens", &LONG_TOKENS.to_string(), "--model"])
        .arg(model())
        .output()
        .expect("running axiom generate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "axiom generate failed:\n{stderr}");
    let stats: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap_or("")).expect("stats JSON line");
    assert!(stats["prefill_tokens"].as_u64().unwrap() > axiom_engine::state::ATTN_CHUNK as u64, "{stats}");
    let expected: Vec<u32> = stats["ids"].as_array().expect("ids").iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let k = KernelArgs::default()
        .with(&keys::PROMPT, prompt.as_str())
        .with(&keys::TOKENS, LONG_TOKENS)
        .with(&keys::TEMP, 0.0)
        .with(&keys::IO_CORE, "off")
        .with(&keys::CTX, 256u64);
    let r = boot(2, &k, image(), LONG_TIMEOUT, SerialInput::None);
    assert_eq!(r.verdict(), Verdict::Success);
    let answers = infer::answers(&r);
    assert_eq!(answers.len(), 1, "one answer");
    assert_eq!(answers[0].ids, expected, "kernel tokens after a {}-token prompt differ from the host engine's", stats["prefill_tokens"]);
    let mem = r.first::<MemPlan>().expect("@mem");
    assert_eq!((mem.kv_type.as_ref(), mem.n_ctx), ("f16", 256), "{mem:?}");
    // SmolLM2: 30 layers, K and V, 3 heads of 64 f16 values.
    assert_eq!(mem.kv_bytes_per_token, 30 * 2 * 3 * 64 * 2);
    assert_eq!(mem.kv_bytes, mem.kv_slab_bytes * mem.kv_slabs);
}

fn resident(smp: u32) {
    let r = generates_host_tokens(smp, &args(), "resident");
    let load = r.first::<Load>().expect("@load (resident load)");
    let layers = layout().layers.len() as u64;
    assert_eq!(load.layers, layers);
    // One @load_progress per layer read at boot, counting up to all of them.
    let progress: Vec<LoadProgress> = r.all::<LoadProgress>().collect();
    assert_eq!(progress.iter().map(|p| p.layer).collect::<Vec<_>>(), (1..=layers).collect::<Vec<_>>());
    let total = layout().layers.iter().map(|e| e.size).sum::<u64>();
    assert!(progress.iter().all(|p| p.layers == layers && p.total_bytes == total && p.bytes <= total));
    assert!(progress.windows(2).all(|w| w[0].bytes < w[1].bytes), "bytes grow with every layer");
    assert_eq!(progress.last().map(|p| p.bytes), Some(total));
}

/// Streaming through two layer slots: `slots=2`, or a `budget` equal to
/// the `min_budget` the kernel reports (its globals plus two layer slots).
fn streaming(smp: u32, by_budget: bool) {
    let k = if by_budget { args().with(&keys::BUDGET, too_small_budget_refusal().1) } else { args().with(&keys::SLOTS, 2u32) };
    let r = generates_host_tokens(smp, &k, "streaming");
    assert_eq!(r.first::<MemPlan>().unwrap().slots, 2);
    assert!(r.first::<Summary>().unwrap().io_core, "the I/O core streamed");
    let io = r.first::<Io>().expect("@io (the I/O core streamed)");
    let layers = layout().layers.len() as u64;
    // Every forward pass streams every layer (prefill passes + one per token after the first).
    assert!(io.layers_streamed >= layers * TOKENS as u64, "{io:?}");
    assert_eq!(r.all::<LoadProgress>().count(), 0, "streaming loads no layer at boot");
}

#[test]
fn resident_smp2_matches_host() {
    resident(2);
}

#[test]
fn resident_smp4_matches_host() {
    resident(4);
}

#[test]
fn streaming_2_slots_smp2_matches_host() {
    streaming(2, false);
}

#[test]
fn streaming_budget_smp4_matches_host() {
    streaming(4, true);
}

/// `io_core=off` with three CPUs: no CPU is the I/O core (`@cpu` roles),
/// all three compute and compute worker 0 loads each layer itself.
#[test]
fn io_core_off_smp3_every_cpu_computes() {
    let k = args().with(&keys::IO_CORE, "off").with(&keys::SLOTS, 2u32);
    let r = generates_host_tokens(3, &k, "streaming");
    // Compute worker 0 streamed every layer of every pass itself.
    let io = r.first::<Io>().expect("@io (the synchronous loader's reads)");
    assert!(io.layers_streamed >= layout().layers.len() as u64 * TOKENS as u64, "{io:?}");
}

/// A run that must stop with an `@error` (through the kernel's failure exit).
fn fails_cleanly(r: &RunResult) -> Vec<String> {
    assert!(!r.done_ok());
    assert!(matches!(r.verdict(), Verdict::KernelFailed(_)), "{}", r.verdict());
    assert_eq!(r.exit_status, Some(EXIT_FAILURE_STATUS), "the kernel's failure exit");
    assert_eq!(r.all::<Token>().count(), 0, "no token from a bad image");
    let errors = r.errors();
    assert!(!errors.is_empty(), "an @error");
    errors
}

#[test]
fn corrupted_layer_7_stops_with_crc_error() {
    let l = layout();
    let extent = l.layers[7];
    let mut bytes = std::fs::read(image()).unwrap();
    let at = (extent.offset + extent.size / 2) as usize;
    bytes[at] ^= 0x5a;
    let path = scratch("corrupt-layer7.img");
    std::fs::write(&path, &bytes).unwrap();
    drop(bytes);
    let k = args().with(&keys::VERIFY, "always");
    let r = boot(2, &k, &path, FAILURE_TIMEOUT, SerialInput::None);
    let errors = fails_cleanly(&r);
    assert!(errors.iter().any(|e| e.contains("layer 7") && e.contains("CRC32C")), "{errors:?}");
}

#[test]
fn truncated_image_stops_with_clear_error() {
    let l = layout();
    let middle = &l.layers[l.layers.len() / 2];
    let cut = middle.offset + 2 * 4096; // inside that layer, on a 4 KiB boundary
    let path = scratch("truncated.img");
    let bytes = std::fs::read(image()).unwrap();
    std::fs::write(&path, &bytes[..cut as usize]).unwrap();
    drop(bytes);
    let r = boot(2, &args(), &path, FAILURE_TIMEOUT, SerialInput::None);
    let errors = fails_cleanly(&r);
    let clear = |e: &str| {
        let e = e.to_ascii_lowercase();
        ["truncat", "ends", "beyond", "past the end", "outside"].iter().any(|w| e.contains(w))
    };
    assert!(errors.iter().any(|e| clear(e)), "the error should say the image is cut short: {errors:?}");
}

#[test]
fn non_gguf_disk_stops_with_clear_error() {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut data = vec![0u8; 4 << 20];
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let path = scratch("random.img");
    std::fs::write(&path, &data).unwrap();
    let r = boot(2, &args(), &path, FAILURE_TIMEOUT, SerialInput::None);
    let errors = fails_cleanly(&r);
    assert!(errors.iter().any(|e| e.contains("GGUF")), "the error should say the disk is not GGUF: {errors:?}");
}

/// A boot with `budget=1M`, far below two layers: its `@error` message and
/// the `min_budget` it reports (once per test process).
fn too_small_budget_refusal() -> &'static (String, u64) {
    static REFUSAL: OnceLock<(String, u64)> = OnceLock::new();
    REFUSAL.get_or_init(|| {
        let k = args().with(&keys::BUDGET, "1M");
        let r = boot(2, &k, image(), FAILURE_TIMEOUT, SerialInput::None);
        fails_cleanly(&r);
        let e = r.first::<Error>().unwrap();
        (e.msg.into_owned(), e.min_budget.expect("min_budget in the @error"))
    })
}

#[test]
fn budget_below_two_layers_is_refused_with_minimum() {
    let (msg, min) = too_small_budget_refusal();
    assert!(msg.contains("budget"), "{msg}");
    let l = layout();
    assert!(*min > 1 << 20 && *min >= l.globals.size + 2 * l.max_layer_size(), "min_budget {min} covers the globals and two layers");
}

#[test]
fn interactive_answers_two_prompts() {
    const ANSWER_TOKENS: u32 = 8;
    let k = KernelArgs::default().with(&keys::INTERACTIVE, true).with(&keys::TOKENS, ANSWER_TOKENS).with(&keys::TEMP, 0.0);
    // Untrusted input first: an overlong line and one that is not UTF-8 get
    // a @warning each and are skipped; then two prompts.
    let mut input = vec![b'x'; 600];
    input.extend_from_slice(b"\n\xff\xfe not UTF-8\n");
    input.extend_from_slice(format!("{PROMPT}\nOne, two, three,\n/quit\n").as_bytes());
    let r = boot(2, &k, image(), GENERATE_TIMEOUT, SerialInput::Bytes(input));
    assert_eq!(r.verdict(), Verdict::Success);
    assert!(r.first::<Ready>().is_some(), "@ready before reading prompts");
    let warnings: Vec<String> = r.all::<Warning>().map(|w| w.msg.into_owned()).collect();
    assert_eq!(warnings.len(), 2, "one @warning per bad line: {warnings:?}");
    let answers = infer::answers(&r);
    assert_eq!(answers.len(), 2, "two answers");
    assert!(answers.iter().all(|a| a.summary.is_some() && !a.ids.is_empty()));
    assert_eq!(r.all::<Summary>().count(), 2);
    // The first prompt starts from an empty context: the host's greedy tokens.
    assert_eq!(answers[0].ids, host_ids()[..ANSWER_TOKENS as usize], "first answer differs from the host engine's");
}
