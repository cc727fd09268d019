//! Gemma 3 270M (Q4_K_M: Q8_0, Q5_0, Q4_K and Q6_K tensors; sliding-window
//! layers, post-norms, GELU) boots in QEMU and answers with the token ids
//! `axiom generate` computes on the host, resident and streaming through two
//! layer slots. The model comes from `tools/fetch-model.sh --model
//! gemma3-270m` (`tools/setup.sh` fetches it). TCG runs this model at about
//! 0.2 tokens/s (its 262,144-row output head dominates), so the prompt and
//! the answer are short.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axiom_proto::cmdline::keys;
use axiom_proto::telemetry::events::{MemPlan, Model};
use axiom_tools::infer::{self, KernelArgs};
use axiom_tools::qemu::{self, QemuOptions, SerialInput, Verdict};

const PROMPT: &str = "The capital of France is";
const TOKENS: u32 = 2;
/// About two minutes per boot on a 2-core host under TCG.
const TIMEOUT: Duration = Duration::from_secs(900);

static QEMU: Mutex<()> = Mutex::new(());

fn axiom() -> Command {
    Command::new(env!("CARGO_BIN_EXE_axiom"))
}

fn model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| axiom_testkit::cached_model(axiom_testkit::GEMMA3_MODEL))
}

fn image() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        infer::cached_image(model(), |src, out| {
            let status = axiom().arg("pack").arg(src).arg(out).status()?;
            anyhow::ensure!(status.success(), "axiom pack failed ({status})");
            Ok(())
        })
        .expect("packing Gemma 3")
    })
}

/// The host engine's greedy ids (the last stderr line of `axiom generate`).
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
        assert_eq!(ids.len(), TOKENS as usize);
        ids
    })
}

fn answers_like_the_host(args: KernelArgs, mode: &str) {
    let expected = host_ids().to_vec();
    let args = args.with(&keys::PROMPT, PROMPT).with(&keys::TOKENS, TOKENS).with(&keys::TEMP, 0.0);
    let opts = QemuOptions { smp: 2, cmdline: args.cmdline(), disk: Some(image().to_path_buf()), timeout: TIMEOUT, serial_input: SerialInput::None, ..Default::default() };
    let _serial = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let kernel = qemu::build_kernel().expect("kernel builds");
    println!("--- cmdline: {}", opts.cmdline);
    let r = qemu::run_kernel(&kernel, &opts, &mut |line| println!("{line}")).expect("QEMU runs");
    assert!(!r.timed_out, "the run hit the runner's timeout: the kernel hung");
    assert_eq!(r.verdict(), Verdict::Success);
    assert_eq!(r.first::<Model>().expect("@model").arch, "gemma3");
    assert_eq!(r.first::<MemPlan>().expect("@mem").mode, mode);
    let answers = infer::answers(&r);
    assert_eq!(answers.len(), 1, "one answer");
    assert_eq!(answers[0].ids, expected, "kernel tokens ({mode}) differ from the host engine's");
}

#[test]
fn gemma3_resident_matches_host() {
    answers_like_the_host(KernelArgs::default(), "resident");
}

#[test]
fn gemma3_streaming_2_slots_matches_host() {
    answers_like_the_host(KernelArgs::default().with(&keys::SLOTS, 2u32), "streaming");
}
