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
//! overlong line and one that is not UTF-8; a three-turn conversation in the
//! chat template whose follow-ups evaluate only their new tokens and answer
//! as the host engine answers the same conversation; a small context that
//! overflows, drops the oldest turn with a `@warning` and keeps answering.
//! Then the model on a GPT partition (`axiom disk`): found behind an
//! unrelated data partition, whose bytes the run leaves as they were, and on
//! a second namespace behind one without a partition table; a GPT
//! without the model partition, one with a corrupt header and a partition
//! too small for its image each stop with a clear `@error`.
//!
//! The packed image is built once (in the image cache that `axiom run` uses);
//! QEMU runs are serialized (the host may have two cores). Each test prints
//! the serial log, which the harness shows when the test fails.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axiom_engine::gguf::Gguf;
use axiom_engine::image::PackedLayout;
use axiom_proto::cmdline::keys;
use axiom_proto::gpt;
use axiom_proto::telemetry::events::{ChatStats, CoreToken, Cpu, Error, Io, Load, LoadProgress, MemPlan, Model, Prompt, Ready, Summary, Token, Warning};
use axiom_tools::infer::{self, KernelArgs};
use axiom_tools::qemu::{self, QemuOptions, RunResult, SerialInput, Verdict, EXIT_FAILURE_STATUS};
use common::{axiom, packed_image};

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

fn model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(axiom_testkit::default_model)
}

/// The packed default model, from the same cache `axiom run` uses.
fn image() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| packed_image(model()))
}

fn layout() -> &'static PackedLayout {
    static LAYOUT: OnceLock<PackedLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let bytes = std::fs::read(image()).unwrap();
        let g = Gguf::parse(&bytes).expect("the packed image parses");
        PackedLayout::from_gguf(&g).expect("the packed image has an extent table")
    })
}

/// `axiom generate ARGS --model <default>`: the generated ids (from its
/// final statistics line on stderr) and the run's output.
fn host_generate(args: &[&str]) -> (Vec<u32>, std::process::Output) {
    let out = axiom().arg("generate").args(args).arg("--model").arg(model()).output().expect("running axiom generate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "axiom generate {args:?} failed:\n{stderr}");
    let stats: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap_or("")).expect("stats JSON line");
    let ids = stats["ids"].as_array().expect("ids").iter().map(|v| v.as_u64().unwrap() as u32).collect();
    (ids, out)
}

/// The host engine's greedy token ids for [`PROMPT`] (`axiom generate`
/// prints them in its final statistics line on stderr).
fn host_ids() -> &'static [u32] {
    static IDS: OnceLock<Vec<u32>> = OnceLock::new();
    IDS.get_or_init(|| {
        let (ids, out) = host_generate(&["--prompt", PROMPT, "--temp", "0", "--tokens", &TOKENS.to_string()]);
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

/// Partial residency: `pin=N` keeps N layers (spread over the layer order)
/// in memory and streams the rest every pass; the tokens are the host's.
fn partial(smp: u32, k: KernelArgs, pinned: u64) {
    let r = generates_host_tokens(smp, &k, "streaming");
    let l = layout();
    let layers = l.layers.len() as u64;
    let mem = r.first::<MemPlan>().unwrap();
    assert_eq!((mem.pinned_layers, mem.streamed_layers), (pinned, layers - pinned), "{mem:?}");
    // The documented choice: layer i is pinned when floor((i+1)P/n) > floor(iP/n).
    let is_pinned = |i: u64| (i + 1) * pinned / layers > i * pinned / layers;
    let pinned_bytes: u64 = (0..layers).filter(|&i| is_pinned(i)).map(|i| l.layers[i as usize].size).sum();
    let streamed_bytes: u64 = (0..layers).filter(|&i| !is_pinned(i)).map(|i| l.layers[i as usize].size).sum();
    assert_eq!((mem.pinned_bytes, mem.streamed_bytes_per_token), (pinned_bytes, streamed_bytes), "{mem:?}");
    // The pinned layers are read once at boot, one @load_progress each.
    let load = r.first::<Load>().expect("@load");
    assert_eq!(load.layers, pinned);
    assert_eq!(load.bytes, l.globals.size + pinned_bytes);
    assert_eq!(r.all::<LoadProgress>().count() as u64, pinned);
    // Each pass reads the streamed layers only (plus the read-ahead of the
    // next pass's first ones, at most one slot each).
    let io = r.first::<Io>().expect("@io");
    let s = r.first::<Summary>().unwrap();
    let passes = r.all::<CoreToken>().filter(|c| c.core == 0).count() as u64;
    let streamed = layers - pinned;
    assert!(io.layers_streamed >= streamed * passes && io.layers_streamed <= streamed * passes + mem.slots, "{io:?} over {passes} passes");
    assert!(io.bytes <= streamed_bytes * passes + mem.slots * mem.slot_bytes, "{io:?}");
    assert_eq!(s.bytes_per_token, io.bytes / passes, "{s:?}");
    assert!(s.io_mib_per_s > 0.0 && s.stream_wait_frac >= 0.0 && s.stream_wait_frac < 1.0, "{s:?}");
}

#[test]
fn partial_residency_pin_smp2_matches_host() {
    partial(2, args().with(&keys::PIN, 12u32), 12);
}

/// A budget between the minimum and the whole model: the default plan pins
/// what fits beside three slots (and worker 0 streams, with `io_core=off`).
#[test]
fn partial_residency_by_budget_io_core_off_smp2_matches_host() {
    let l = layout();
    let span = l.max_layer_size().next_multiple_of(4096);
    let globals = l.globals.size.next_multiple_of(4096);
    // The packed head (as @mem reports it) follows the slots: ask the
    // minimum-budget refusal for the fixed part, then add 3 slots + 10 pins.
    let (_, min) = too_small_budget_refusal();
    let fixed = *min - 2 * l.max_layer_size();
    let budget = fixed + 3 * l.max_layer_size() + 10 * span + 3 * 4096;
    assert!(globals <= fixed);
    partial(2, args().with(&keys::BUDGET, budget).with(&keys::IO_CORE, "off"), 10);
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

/// The host engine's greedy answer to a conversation (`axiom generate --chat
/// --messages`): `turns` are the earlier (user, answer) pairs.
fn host_chat_ids(turns: &[(&str, &str)], user: &str, tokens: u32, ctx: Option<u32>) -> Vec<u32> {
    let mut messages: Vec<serde_json::Value> = Vec::new();
    for (u, a) in turns {
        messages.push(serde_json::json!({"role": "user", "content": u}));
        messages.push(serde_json::json!({"role": "assistant", "content": a}));
    }
    messages.push(serde_json::json!({"role": "user", "content": user}));
    let (tokens, messages) = (tokens.to_string(), serde_json::Value::Array(messages).to_string());
    let mut args = vec!["--chat", "--temp", "0", "--tokens", &tokens, "--messages", &messages];
    let ctx = ctx.map(|c| c.to_string());
    if let Some(c) = &ctx {
        args.extend(["--ctx", c]);
    }
    host_generate(&args).0
}

/// Tokens the cache holds after an answer: its context and the generated
/// tokens, less the last one when the limit stopped it (sampled, never
/// evaluated); an end-of-turn stop token is not counted in `generated`.
fn cached_after(p: &Prompt, s: &Summary) -> u64 {
    p.tokens + s.generated - u64::from(s.stop == "limit")
}

const CHAT_TOKENS: u32 = 4;
/// A conversation's turns evaluate about as many tokens as one 16-token
/// answer, but on a loaded 2-core host TCG prefill can drop to 0.3 tokens/s.
const CHAT_TIMEOUT: Duration = Duration::from_secs(600);

fn chat_args() -> KernelArgs {
    KernelArgs::default().with(&keys::INTERACTIVE, true).with(&keys::CHAT, true).with(&keys::TOKENS, CHAT_TOKENS).with(&keys::TEMP, 0.0)
}

#[test]
fn conversation_reuses_the_cache_and_matches_the_host() {
    let lines = ["Hi", "Name a color.", "Thanks"];
    let input = format!("{}\n/stats\n/quit\n", lines.join("\n"));
    let r = boot(2, &chat_args(), image(), CHAT_TIMEOUT, SerialInput::Bytes(input.into_bytes()));
    assert_eq!(r.verdict(), Verdict::Success);
    let prompts: Vec<Prompt> = r.all::<Prompt>().collect();
    let summaries: Vec<Summary> = r.all::<Summary>().collect();
    let answers = infer::answers(&r);
    assert_eq!((prompts.len(), summaries.len(), answers.len()), (3, 3, 3), "three turns, three answers");
    assert_eq!(prompts[0].reused_tokens, 0, "the first turn starts from an empty cache");
    for i in 0..3 {
        let p = &prompts[i];
        assert_eq!((p.turn, p.text.as_ref()), (i as u64, lines[i]));
        assert_eq!(p.new_tokens + p.reused_tokens, p.tokens, "turn {i}: the context is the reused and the new tokens");
        assert_eq!(summaries[i].prompt_tokens, p.new_tokens, "turn {i}: only the new tokens are evaluated");
        if i > 0 {
            let before = cached_after(&prompts[i - 1], &summaries[i - 1]);
            assert_eq!(p.reused_tokens, before, "turn {i} reuses every token the cache holds");
            assert!(p.new_tokens < p.tokens / 2, "turn {i} evaluates only its own tokens: {} of {}", p.new_tokens, p.tokens);
        }
    }
    // The same conversation on the host, whole: the same answers.
    let mut turns: Vec<(&str, &str)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        assert!(!answers[i].ids.is_empty() || summaries[i].stop == "eos");
        assert_eq!(answers[i].ids, host_chat_ids(&turns, line, CHAT_TOKENS, None), "turn {i}: the kernel's answer differs from the host engine's");
        turns.push((line, &answers[i].text));
    }
    let stats = r.first::<ChatStats>().expect("/stats writes @chat_stats");
    assert_eq!((stats.answers, stats.turn, stats.turns_kept, stats.dropped_turns), (3, 3, 3, 0));
    assert_eq!(stats.cached_tokens, cached_after(&prompts[2], &summaries[2]));
    assert_eq!(stats.reused_tokens, prompts[1].reused_tokens + prompts[2].reused_tokens);
    assert!(stats.decode_tok_s > 0.0 || summaries[2].generated < 2);
}

#[test]
fn a_full_context_drops_the_oldest_turns_and_keeps_answering() {
    // SmolLM2's template: the first turn is 31 tokens with the system
    // prompt, the second about 50: with its answer it overflows 48.
    const CTX: u32 = 48;
    let lines = ["Hi", "Name a color."];
    let input = format!("{}\n/reset\nHi\n/quit\n", lines.join("\n"));
    let r = boot(2, &chat_args().with(&keys::CTX, CTX), image(), CHAT_TIMEOUT, SerialInput::Bytes(input.into_bytes()));
    assert_eq!(r.verdict(), Verdict::Success);
    let prompts: Vec<Prompt> = r.all::<Prompt>().collect();
    let summaries: Vec<Summary> = r.all::<Summary>().collect();
    let answers = infer::answers(&r);
    assert_eq!((prompts.len(), summaries.len()), (3, 3), "every line answered");
    let warnings: Vec<String> = r.all::<Warning>().map(|w| w.msg.into_owned()).collect();
    let drops: Vec<usize> = (1..2).filter(|&i| prompts[i].reused_tokens < cached_after(&prompts[i - 1], &summaries[i - 1])).collect();
    assert_eq!(drops, [1], "the second turn overflows ctx={CTX}: {prompts:?}");
    assert_eq!(warnings.len(), drops.len(), "one @warning per drop: {warnings:?}");
    assert!(warnings.iter().all(|w| w.contains("dropped the oldest") && w.contains("system prompt")), "{warnings:?}");
    for p in &prompts {
        assert!(p.tokens + p.max_new <= CTX as u64, "the context and the answer fit: {p:?}");
    }
    // The first turn that dropped answers as the host does for the whole
    // conversation in the same context (which drops the same turns).
    let d = drops[0];
    let turns: Vec<(&str, &str)> = (0..d).map(|i| (lines[i], answers[i].text.as_str())).collect();
    assert_eq!(answers[d].ids, host_chat_ids(&turns, lines[d], CHAT_TOKENS, Some(CTX)), "turn {d} after the drop differs from the host's");
    // After /reset, "Hi" is a first turn again: the first answer, reusing
    // the cached system prompt.
    assert_eq!(prompts[2].turn, 0);
    assert_eq!(prompts[2].tokens, prompts[0].tokens);
    assert!(prompts[2].reused_tokens > 0);
    assert_eq!(answers[2].ids, answers[0].ids);
}

/// A GPT disk from `axiom disk` holding the packed default model, with a
/// pattern written over its data partition; returns the disk's path.
fn gpt_disk(name: &str) -> PathBuf {
    let path = scratch(name);
    let out = axiom().args(["disk", "--size", "160M", "--model"]).arg(image()).arg(&path).output().expect("running axiom disk");
    assert!(out.status.success(), "axiom disk failed: {}", String::from_utf8_lossy(&out.stderr));
    println!("{}", String::from_utf8_lossy(&out.stdout));
    let (_, parts) = read_gpt(&path);
    let data = parts.iter().find(|p| p.has_name("axiom-data")).expect("the data partition");
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut pattern = vec![0u8; (data.blocks() * 512) as usize];
    for chunk in pattern.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    write_at(&path, data.first_lba * 512, &pattern);
    path
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

fn read_at(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).unwrap();
    buf
}

/// The primary GPT header and the partitions of a disk image.
fn read_gpt(path: &Path) -> (gpt::GptHeader, Vec<gpt::Partition>) {
    let blocks = std::fs::metadata(path).unwrap().len() / 512;
    let h = gpt::GptHeader::parse(&read_at(path, 512, 512), blocks).expect("a valid GPT");
    let entries = read_at(path, h.entries_lba * 512, h.entries_bytes() as u64);
    let parts = h.partitions(&entries).expect("valid entries").collect();
    (h, parts)
}

/// Rewrites the primary GPT's entries with `edit`, CRCs recomputed.
fn edit_gpt(path: &Path, edit: impl Fn(&mut gpt::Partition)) {
    let (mut h, parts) = read_gpt(path);
    let mut entries = read_at(path, h.entries_lba * 512, h.entries_bytes() as u64);
    for mut p in parts {
        edit(&mut p);
        entries[p.index as usize * gpt::ENTRY_SIZE..][..gpt::ENTRY_SIZE].copy_from_slice(&p.to_bytes());
    }
    h.entries_crc = gpt::crc32(&entries);
    write_at(path, h.entries_lba * 512, &entries);
    write_at(path, 512, &gpt::header_block(&h, 512));
}

const GPT_TOKENS: u32 = 4;

#[test]
fn model_in_a_gpt_partition_behind_a_data_partition_answers() {
    let path = gpt_disk("gpt.img");
    let (_, parts) = read_gpt(&path);
    let (data, model_part) = (parts[0], parts[1]);
    assert!(data.first_lba < model_part.first_lba, "the unrelated partition comes first");
    let data_before = sha(&read_at(&path, data.first_lba * 512, data.blocks() * 512));
    let k = args().with(&keys::TOKENS, GPT_TOKENS);
    let r = boot(2, &k, &path, GENERATE_TIMEOUT, SerialInput::None);
    assert_eq!(r.verdict(), Verdict::Success);
    let m = r.first::<Model>().expect("@model");
    assert_eq!(m.partition.as_deref(), Some("axiom-model"));
    assert_eq!(m.offset, model_part.first_lba * 512);
    assert!(m.offset > 0);
    assert_eq!(m.region_bytes, model_part.blocks() * 512);
    let answers = infer::answers(&r);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].ids, host_ids()[..GPT_TOKENS as usize], "the answer from the partition differs from the host engine's");
    assert_eq!(sha(&read_at(&path, data.first_lba * 512, data.blocks() * 512)), data_before, "the data partition's bytes changed");
}

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

#[test]
fn gpt_without_the_model_partition_stops_with_clear_error() {
    let path = gpt_disk("gpt-no-model.img");
    edit_gpt(&path, |p| {
        if p.type_guid == gpt::MODEL_TYPE {
            p.type_guid = gpt::LINUX_DATA_TYPE;
            p.name = gpt::Partition::encode_name("backup").unwrap();
        }
    });
    let r = boot(2, &args(), &path, FAILURE_TIMEOUT, SerialInput::None);
    let errors = fails_cleanly(&r);
    assert!(errors.iter().any(|e| e.contains("no GPT partition named 'axiom-model'") && e.contains("'backup'") && e.contains("'axiom-data'")), "{errors:?}");
    // model=part:NAME picks the partition by name.
    let r = boot(2, &args().with(&keys::MODEL, "part:models"), &path, FAILURE_TIMEOUT, SerialInput::None);
    let errors = fails_cleanly(&r);
    assert!(errors.iter().any(|e| e.contains("no GPT partition named 'models'")), "{errors:?}");
}

#[test]
fn corrupt_gpt_header_stops_with_clear_error() {
    let path = gpt_disk("gpt-corrupt.img");
    let mut header = read_at(&path, 512, 512);
    header[60] ^= 0x10; // a bit of the disk GUID: only the CRC can tell
    write_at(&path, 512, &header);
    let r = boot(2, &args(), &path, FAILURE_TIMEOUT, SerialInput::None);
    let errors = fails_cleanly(&r);
    assert!(errors.iter().any(|e| e.contains("GPT header is corrupt") && e.contains("CRC32")), "{errors:?}");
}

#[test]
fn partition_too_small_for_its_image_stops_with_clear_error() {
    let path = gpt_disk("gpt-small.img");
    edit_gpt(&path, |p| {
        if p.type_guid == gpt::MODEL_TYPE {
            p.last_lba = p.first_lba + p.blocks() / 2;
        }
    });
    let r = boot(2, &args(), &path, FAILURE_TIMEOUT, SerialInput::None);
    let errors = fails_cleanly(&r);
    assert!(errors.iter().any(|e| e.contains("truncated") && e.contains("partition is too small for its image")), "{errors:?}");
}

/// Issue 11's bug: `axiom run --interactive` read its stdin as UTF-8 lines,
/// so a line that was not UTF-8 ended the input at once, silently. Now the
/// bytes reach the kernel, which refuses that line with its own `@warning`
/// and answers the next.
#[test]
fn run_interactive_forwards_a_line_that_is_not_utf8_and_goes_on() {
    use std::io::Write;
    use std::process::Stdio;
    let _serial = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = axiom()
        .args(["run", "--interactive", "--tokens", "2", "--temp", "0", "--smp", "2", "--show", "lines", "--timeout", "600", "--model"])
        .arg(model())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running axiom run");
    let mut stdin = child.stdin.take().unwrap();
    let mut input = b"\xff\xfeab\n".to_vec();
    input.extend_from_slice(format!("{PROMPT}\n/quit\n").as_bytes());
    stdin.write_all(&input).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "axiom run --interactive failed ({})", out.status);
    let mut r = RunResult::default();
    for line in stdout.lines() {
        r.push_line(line.to_string());
    }
    let warnings: Vec<String> = r.all::<Warning>().map(|w| w.msg.into_owned()).collect();
    assert!(warnings.iter().any(|w| w.contains("not valid UTF-8")), "the kernel refuses the bad line: {warnings:?}");
    let answers = infer::answers(&r);
    assert_eq!(answers.len(), 1, "the line after the bad one is answered");
    assert_eq!(answers[0].ids, host_ids()[..2], "the answer to {PROMPT:?}");
    assert!(r.done_ok());
}

/// "On any NVMe namespace": namespace 1 holds unrelated data without a
/// partition table, namespace 2 the GPT disk; the kernel finds the model
/// partition on namespace 2.
#[test]
fn model_partition_on_the_second_namespace_is_found() {
    let gpt_disk = gpt_disk("gpt-ns2.img");
    let other = scratch("ns1-zeros.img");
    std::fs::write(&other, vec![0u8; 4 << 20]).unwrap();
    let file = gpt_disk.canonicalize().unwrap().display().to_string().replace(',', ",,");
    let opts = QemuOptions {
        smp: 2,
        cmdline: args().with(&keys::TOKENS, GPT_TOKENS).cmdline(),
        disk: Some(other.clone()),
        timeout: GENERATE_TIMEOUT,
        extra_args: vec![
            "-drive".into(),
            format!("file={file},if=none,format=raw,id=nvm2,cache=writeback"),
            "-device".into(),
            "nvme-ns,drive=nvm2,nsid=2".into(),
        ],
        ..Default::default()
    };
    let _serial = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let kernel = qemu::build_kernel().expect("kernel builds");
    let r = qemu::run_kernel(&kernel, &opts, &mut |line| println!("{line}")).expect("QEMU runs");
    assert!(!r.timed_out);
    assert_eq!(r.verdict(), Verdict::Success);
    let m = r.first::<Model>().expect("@model");
    assert_eq!((m.nsid, m.partition.as_deref()), (2, Some("axiom-model")));
    assert_eq!(infer::answers(&r)[0].ids, host_ids()[..GPT_TOKENS as usize]);
    assert!(std::fs::read(&other).unwrap().iter().all(|&b| b == 0), "namespace 1 is left alone");
}
