//! Host half of the kernel's inference mode (docs/running.md): the kernel
//! command line for a prompt, the cache of packed disk images, the default
//! model, and reading answers back out of the telemetry. Shared by
//! `axiom run`, `axiom sweep` and the QEMU tests (`tools/tests/qemu_infer.rs`).

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::qemu::{workspace_root, Event, RunResult};

/// The kernel truncates its command line past this many bytes.
pub const CMDLINE_MAX: usize = 1024;

/// `${AXIOM_CACHE:-$HOME/.cache/axiom}`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("AXIOM_CACHE") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root")).join(".cache/axiom"),
    }
}

/// Percent-encodes a command-line value: every byte outside
/// `[A-Za-z0-9._~-]` becomes `%XX` (so spaces, `=`, `%` and UTF-8 survive the
/// space-separated `key=value` syntax).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The inference keys of the kernel command line (ISSUE5 contract, README).
/// `None` leaves the kernel's default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InferKeys {
    pub prompt: Option<String>,
    pub interactive: bool,
    pub chat: bool,
    pub tokens: Option<u32>,
    pub temp: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<u32>,
    pub seed: Option<u64>,
    /// Memory for weights, `SIZE` as the kernel parses it (`64M`, `1G`, bytes).
    pub budget: Option<String>,
    pub slots: Option<u32>,
    /// `Some(true)` = `io_core=on`.
    pub io_core: Option<bool>,
    /// `first` or `always`.
    pub verify: Option<String>,
    /// `layer`, `token` or `off`.
    pub telemetry: Option<String>,
    pub ctx: Option<u32>,
}

impl InferKeys {
    /// Whether these keys put the kernel in inference mode.
    pub fn is_inference(&self) -> bool {
        self.prompt.is_some() || self.interactive
    }

    /// `key=value ...` in a fixed order, values percent-encoded where free text.
    pub fn cmdline(&self) -> String {
        let mut keys: Vec<String> = Vec::new();
        if let Some(p) = &self.prompt {
            keys.push(format!("prompt={}", percent_encode(p)));
        }
        if self.interactive {
            keys.push("interactive=1".into());
        }
        if self.chat {
            keys.push("chat=1".into());
        }
        let mut num = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                keys.push(format!("{k}={v}"));
            }
        };
        num("tokens", self.tokens.map(|v| v.to_string()));
        num("temp", self.temp.map(|v| v.to_string()));
        num("top_p", self.top_p.map(|v| v.to_string()));
        num("top_k", self.top_k.map(|v| v.to_string()));
        num("seed", self.seed.map(|v| v.to_string()));
        num("budget", self.budget.as_deref().map(percent_encode));
        num("slots", self.slots.map(|v| v.to_string()));
        num("io_core", self.io_core.map(|on| if on { "on" } else { "off" }.to_string()));
        num("verify", self.verify.as_deref().map(percent_encode));
        num("telemetry", self.telemetry.as_deref().map(percent_encode));
        num("ctx", self.ctx.map(|v| v.to_string()));
        keys.join(" ")
    }
}

/// Joins command-line fragments with single spaces, skipping empty ones.
pub fn join_cmdline(parts: &[&str]) -> String {
    parts.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The default model's path, from `tools/fetch-model.sh` (which downloads
/// and checks it on first use): the last line of its stdout.
pub fn default_model() -> Result<PathBuf> {
    let script = workspace_root().join("tools/fetch-model.sh");
    let out = Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout.lines().rev().find(|l| !l.trim().is_empty()).map(|l| PathBuf::from(l.trim()));
    match path {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => bail!("{} printed {}, which is not a file", script.display(), p.display()),
        None => bail!("{} printed no model path", script.display()),
    }
}

/// SHA-256 of a file's bytes, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Where the packed image of `model` is cached:
/// `<cache>/images/<first 16 hex of sha256(model)>-v<pack version>.img`.
pub fn image_path_for(model: &Path) -> Result<PathBuf> {
    let hash = sha256_file(model)?;
    Ok(cache_dir().join("images").join(format!("{}-v{}.img", &hash[..16], axiom_engine::image::PACK_VERSION)))
}

/// The packed disk image of `model`, packing it on first use with
/// `pack(model, tmp)`. The image is written to a temporary file, padded to a
/// multiple of 4096 bytes, and renamed into place, so concurrent runs and
/// interrupted packs never leave a partial image under the final name.
pub fn cached_image(model: &Path, pack: impl FnOnce(&Path, &Path) -> Result<()>) -> Result<PathBuf> {
    let path = image_path_for(model)?;
    if path.is_file() {
        return Ok(path);
    }
    let dir = path.parent().expect("images dir");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("image"),
        std::process::id()
    ));
    eprintln!("axiom: packing {} into {}", model.display(), path.display());
    let result = pack(model, &tmp).and_then(|()| pad_to_4k(&tmp)).and_then(|()| {
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path)
}

fn pad_to_4k(path: &Path) -> Result<()> {
    let len = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?.len();
    let padded = len.div_ceil(4096) * 4096;
    if padded != len {
        let f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.set_len(padded)?;
    }
    Ok(())
}

/// One answer of a run: the `@token` events up to a `@summary`.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    pub ids: Vec<u32>,
    pub text: String,
    pub summary: Option<Event>,
}

/// The answers in a run's telemetry, in order: each ends at a `@summary`
/// (one per prompt; several with `interactive=1`). Tokens after the last
/// `@summary` (a run cut short) form a final answer without summary.
pub fn answers(result: &RunResult) -> Vec<Answer> {
    let mut out = Vec::new();
    let mut cur = Answer::default();
    let mut open = false;
    for e in &result.events {
        match e.name.as_str() {
            "token" => {
                open = true;
                if let Some(id) = e.u64("id") {
                    cur.ids.push(id as u32);
                }
                cur.text.push_str(e.str("text").unwrap_or(""));
            }
            "summary" => {
                cur.summary = Some(e.clone());
                out.push(std::mem::take(&mut cur));
                open = false;
            }
            _ => {}
        }
    }
    if open {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_only_unreserved_bytes() {
        assert_eq!(percent_encode("The capital of France is"), "The%20capital%20of%20France%20is");
        assert_eq!(percent_encode("a=b%c"), "a%3Db%25c");
        assert_eq!(percent_encode("A-z0._~9"), "A-z0._~9");
        assert_eq!(percent_encode("é\n"), "%C3%A9%0A");
    }

    #[test]
    fn cmdline_has_only_the_keys_given() {
        let k = InferKeys { prompt: Some("hi there".into()), tokens: Some(16), temp: Some(0.0), budget: Some("24M".into()), slots: Some(2), io_core: Some(false), ..Default::default() };
        assert_eq!(k.cmdline(), "prompt=hi%20there tokens=16 temp=0 budget=24M slots=2 io_core=off");
        assert!(k.is_inference());
        let k = InferKeys { interactive: true, chat: true, verify: Some("always".into()), telemetry: Some("layer".into()), ..Default::default() };
        assert_eq!(k.cmdline(), "interactive=1 chat=1 verify=always telemetry=layer");
        assert!(!InferKeys::default().is_inference());
        assert_eq!(join_cmdline(&["a=1", " ", "b=2 "]), "a=1 b=2");
    }

    #[test]
    fn answers_split_at_summaries() {
        let mut r = RunResult::default();
        for l in [
            "@prompt {\"tokens\":3}",
            "@token {\"i\":0,\"id\":5,\"text\":\" Paris\",\"us\":1}",
            "@token {\"i\":1,\"id\":13,\"text\":\".\",\"us\":1}",
            "@summary {\"decode_tok_s\":1.5}",
            "@token {\"i\":0,\"id\":7,\"text\":\"x\",\"us\":1}",
        ] {
            r.push_line(l.to_string());
        }
        let a = answers(&r);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].ids, vec![5, 13]);
        assert_eq!(a[0].text, " Paris.");
        assert!(a[0].summary.is_some());
        assert_eq!(a[1].ids, vec![7]);
        assert!(a[1].summary.is_none());
    }
}
