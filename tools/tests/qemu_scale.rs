//! QEMU tests of models larger than RAM, at real scale (issue 10): a
//! `llama-1b`-shaped synthetic Q4_0 model (`axiom synth`, 0.6 GiB) in a
//! 512 MiB guest pins what fits and streams the rest; in a 6 GiB guest its
//! weight region lies above 4 GiB and the pinned layers that do not fit
//! there spill into the RAM below; the default model's image at byte offset
//! 2 TiB of a sparse disk (LBAs beyond 32 bits) loads and answers; bad
//! inputs (an image cut short at that offset, a budget below the minimum, a
//! `ctx=` too large for memory) stop with errors that name the numbers.
//! Every generating run must print the host engine's greedy tokens. Few
//! tokens per run: TCG computes a 1B-shaped layer in seconds.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axiom_proto::cmdline::keys;
use axiom_proto::telemetry::events::{Boot, Error, Io, Load, MemPlan, Model, Summary};
use axiom_tools::infer::{self, KernelArgs};
use axiom_tools::qemu::{self, QemuOptions, RunResult, SerialInput, Verdict, EXIT_FAILURE_STATUS};
use common::{axiom, packed_image};

const PROMPT: &str = "Hi";
const TIMEOUT: Duration = Duration::from_secs(600);
const FAILURE_TIMEOUT: Duration = Duration::from_secs(180);
const TWO_TIB: u64 = 2 << 40;

static QEMU: Mutex<()> = Mutex::new(());

fn scratch(name: &str) -> PathBuf {
    let dir = qemu::kernel_target_dir().with_file_name("scale-test");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The synthetic 1B model (written once; `synth` is deterministic).
fn llama_1b() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = scratch("llama-1b-q4_0-seed1.gguf");
        if !path.is_file() {
            let status = axiom().args(["synth", "--shape", "llama-1b", "--type", "q4_0", "--seed", "1"]).arg(&path).status().unwrap();
            assert!(status.success(), "axiom synth failed");
        }
        path
    })
}

fn default_model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(axiom_testkit::default_model)
}

/// The packed image of `model`, from the cache `axiom run` uses.
fn image(model: &Path) -> PathBuf {
    packed_image(model)
}

/// The host engine's greedy ids for [`PROMPT`].
fn host_ids(model: &Path, tokens: u32) -> Vec<u32> {
    let out = axiom()
        .args(["generate", "--prompt", PROMPT, "--temp", "0", "--tokens", &tokens.to_string(), "--model"])
        .arg(model)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "axiom generate failed:\n{stderr}");
    let stats: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap_or("")).expect("stats JSON line");
    stats["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
}

fn args(tokens: u32) -> KernelArgs {
    KernelArgs::default().with(&keys::PROMPT, PROMPT).with(&keys::TOKENS, tokens).with(&keys::TEMP, 0.0)
}

fn boot(mem: &str, args: &KernelArgs, disk: &Path, timeout: Duration) -> RunResult {
    let opts = QemuOptions {
        smp: 2,
        mem: mem.into(),
        cmdline: args.cmdline(),
        disk: Some(disk.to_path_buf()),
        timeout,
        serial_input: SerialInput::None,
        ..Default::default()
    };
    let _serial = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let kernel = qemu::build_kernel().expect("kernel builds");
    println!("--- mem {mem}, disk {}, cmdline: {}", disk.display(), opts.cmdline);
    let start = Instant::now();
    let result = qemu::run_kernel(&kernel, &opts, &mut |line| println!("{line}")).expect("QEMU runs");
    println!("--- verdict after {:.1} s: {}", start.elapsed().as_secs_f64(), result.verdict());
    assert!(!result.timed_out, "the run hit the runner's timeout ({} s): the kernel hung", timeout.as_secs());
    result
}

fn generates(mem: &str, args: &KernelArgs, disk: &Path, expected: &[u32]) -> RunResult {
    let r = boot(mem, args, disk, TIMEOUT);
    assert_eq!(r.verdict(), Verdict::Success);
    let answers = infer::answers(&r);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].ids, expected, "kernel tokens differ from the host engine's");
    r
}

fn fails_with(mem: &str, args: &KernelArgs, disk: &Path) -> String {
    let r = boot(mem, args, disk, FAILURE_TIMEOUT);
    assert!(matches!(r.verdict(), Verdict::KernelFailed(_)), "{}", r.verdict());
    assert_eq!(r.exit_status, Some(EXIT_FAILURE_STATUS), "the kernel's failure exit");
    let errors = r.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors[0].clone()
}

/// 0.6 GiB of weights in a 512 MiB machine: streaming, some layers pinned
/// (the documented spread), the rest read every token; the host's tokens.
#[test]
fn llama_1b_in_512m_pins_what_fits_and_streams_the_rest() {
    let model = llama_1b();
    let expected = host_ids(model, 2);
    let r = generates("512M", &args(2), &image(model), &expected);
    let boot = r.first::<Boot>().unwrap();
    let m = r.first::<Model>().unwrap();
    assert!(m.model_bytes > boot.mem_usable_mib << 20, "the model ({} bytes) is larger than the machine's memory ({boot:?})", m.model_bytes);
    let mem = r.first::<MemPlan>().unwrap();
    assert_eq!(mem.mode, "streaming");
    assert!(mem.pinned_layers >= 1 && mem.streamed_layers >= 1 && mem.pinned_layers + mem.streamed_layers == 16, "{mem:?}");
    let load = r.first::<Load>().unwrap();
    assert_eq!((load.layers, load.bytes), (mem.pinned_layers, mem.globals_bytes + mem.pinned_bytes));
    let io = r.first::<Io>().unwrap();
    let s = r.first::<Summary>().unwrap();
    assert!(io.layers_streamed >= mem.streamed_layers * 2, "{io:?}");
    assert!(s.bytes_per_token >= mem.streamed_bytes_per_token && s.io_mib_per_s > 0.0, "{s:?}");
}

/// A 6 GiB machine: QEMU puts 3 GiB above 4 GiB, the largest free range,
/// so the tensor region (weight pool, KV cache) lies above 4 GiB; with a
/// budget that holds part of the model, the pinned layers that the region
/// does not hold go to the RAM below 4 GiB. The host's tokens.
#[test]
fn llama_1b_in_6g_runs_from_above_4g_and_spills_pinned_layers() {
    let model = llama_1b();
    let expected = host_ids(model, 2);
    let k = args(2).with(&keys::BUDGET, "600M");
    let r = generates("6G", &k, &image(model), &expected);
    let mem = r.first::<MemPlan>().unwrap();
    assert!(mem.region_phys.0 >= 1 << 32, "the weight pool lies above 4 GiB: {mem:?}");
    assert!(mem.spilled_layers >= 1 && mem.spilled_layers <= mem.pinned_layers, "{mem:?}");
    assert!(!mem.spill_phys.is_empty() && mem.spill_phys.iter().all(|p| p.0 < 1 << 32), "{mem:?}");
    assert!(mem.pinned_layers >= 4, "{mem:?}");
}

/// A sparse disk file with `image` at byte `offset`.
fn disk_with_image_at(name: &str, image: &[u8], offset: u64) -> PathBuf {
    use std::io::{Seek, SeekFrom, Write};
    let path = scratch(name);
    let mut f = std::fs::File::create(&path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(image).unwrap();
    let len = (offset + image.len() as u64).next_multiple_of(4096);
    f.set_len(len).unwrap();
    path
}

/// The default model's image at byte 2 TiB: every read's LBA needs more
/// than 32 bits. It loads (resident) and answers with the host's tokens.
#[test]
fn model_at_2_tib_offset_loads_and_answers() {
    let bytes = std::fs::read(image(default_model())).unwrap();
    let disk = disk_with_image_at("at-2tib.img", &bytes, TWO_TIB);
    let expected = host_ids(default_model(), 4);
    let k = args(4).with(&keys::MODEL, format!("ns:1,offset:{TWO_TIB}").as_str());
    let r = generates("1G", &k, &disk, &expected);
    assert_eq!(r.first::<Model>().unwrap().offset, TWO_TIB);
    let _ = std::fs::remove_file(&disk);
}

/// Bad input at scale: an image cut short at 2 TiB, a budget below the
/// minimum, a context whose KV cache does not fit: each stops with an error
/// that names the numbers.
#[test]
fn bad_scale_inputs_stop_with_errors_naming_the_numbers() {
    let bytes = std::fs::read(image(default_model())).unwrap();
    let cut = bytes.len() / 2 / 4096 * 4096;
    let disk = disk_with_image_at("cut-at-2tib.img", &bytes[..cut], TWO_TIB);
    let k = args(2).with(&keys::MODEL, format!("ns:1,offset:{TWO_TIB}").as_str());
    let e = fails_with("512M", &k, &disk);
    // The disk past the offset holds `cut` bytes: the error says so.
    assert!(e.contains("truncated") && e.contains(&cut.to_string()), "{e}");
    let _ = std::fs::remove_file(&disk);

    let one_b = image(llama_1b());
    let r = boot("512M", &args(2).with(&keys::BUDGET, "100M"), &one_b, FAILURE_TIMEOUT);
    assert!(matches!(r.verdict(), Verdict::KernelFailed(_)));
    let e = r.first::<Error>().unwrap();
    let min = e.min_budget.expect("min_budget");
    assert!(e.msg.contains(&(100u64 << 20).to_string()) && e.msg.contains(&min.to_string()) && min > 100 << 20, "{e:?}");

    // An f32 cache of 8192 positions (512 MiB) cannot fit in 512 MiB (the
    // default f16 one, 256 MiB, now does beside the streaming slots).
    let e = fails_with("512M", &args(2).with(&keys::CTX, 8192u32).with(&keys::KV_TYPE, "f32"), &one_b);
    assert!(e.contains("ctx=8192") && e.contains("KV cache") && e.contains("largest free range"), "{e}");
}
