//! Host half of the kernel's inference mode (docs/running.md): the kernel
//! command line for a prompt, the cache of packed disk images, the default
//! model, and reading answers back out of the telemetry. Shared by
//! `axiom run`, `axiom sweep` and the QEMU tests (`tools/tests/qemu_infer.rs`).

use anyhow::{anyhow, bail, Context, Result};
use axiom_proto::cmdline::{
    keys, Choice, Flag, Float, Int, IntOrMax, Key, KeySpec, Kind, Location, OptChoice, OptInt, OptSize, PercentEncoded, Size, SizeText, Text,
    Type,
};
use axiom_proto::telemetry::events::{Summary, Token};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::qemu::{workspace_root, RunResult};

/// The kernel truncates its command line past this many bytes.
pub const CMDLINE_MAX: usize = 1024;

/// `${AXIOM_CACHE:-$HOME/.cache/axiom}`: models, packed images, fetched
/// test data (the same place the tests and the scripts use).
pub fn cache_dir() -> Result<PathBuf> {
    axiom_testkit::try_cache_dir().map_err(|why| anyhow!(why))
}

/// Keys of the kernel command line, as the kernel's key table
/// (`axiom_proto::cmdline::keys`) defines them: only those set are written
/// (the kernel has defaults for the rest), in table order. Values are
/// checked against the key's type as the kernel checks them, so a value the
/// kernel would refuse is refused here, with the kernel's message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KernelArgs {
    /// The value text for each key set, as it goes on the command line
    /// (percent-encoded where the key is text).
    values: Vec<(&'static KeySpec, String)>,
}

/// A Rust value that can be a value of a key of kind `K`.
pub trait KernelValue<K: Kind> {
    /// The value as the user would write it (not yet percent-encoded).
    fn text(&self) -> String;
}

macro_rules! kernel_values {
    ($($t:ty => $($k:ty),+ : |$v:ident| $text:expr;)*) => {$($(
        impl KernelValue<$k> for $t {
            fn text(&self) -> String {
                let $v = self;
                $text
            }
        }
    )+)*};
}

kernel_values! {
    u64 => Int, OptInt, IntOrMax: |v| v.to_string();
    u32 => Int, OptInt, IntOrMax: |v| v.to_string();
    u64 => Size, OptSize: |v| SizeText(*v).to_string();
    &str => Size, OptSize, Choice, OptChoice, Text, Location: |v| v.to_string();
    String => Size, OptSize, Choice, OptChoice, Text, Location: |v| v.clone();
    f32 => Float: |v| v.to_string();
    bool => Flag: |v| if *v { "1" } else { "0" }.to_string();
}

impl KernelArgs {
    /// Sets `key` to `value` (its text as the user would write it).
    pub fn set(&mut self, key: &'static KeySpec, value: &str) -> Result<()> {
        let text = match key.ty {
            Type::Text { .. } => PercentEncoded(value).to_string(),
            _ => value.to_string(),
        };
        key.check(&text).map_err(|e| anyhow!("{e}"))?;
        self.values.retain(|(k, _)| k.name != key.name);
        self.values.push((key, text));
        Ok(())
    }

    /// With `key` set to `value`. For values written in code: a value the
    /// key refuses is a bug of the caller, reported by a panic.
    pub fn with<K: Kind, V: KernelValue<K>>(mut self, key: &'static Key<K>, value: V) -> Self {
        if let Err(e) = self.set(&key.spec, &value.text()) {
            panic!("{e:#}");
        }
        self
    }

    /// The command-line text of `key`, if set.
    pub fn get<K: Kind>(&self, key: &Key<K>) -> Option<&str> {
        self.values.iter().find(|(k, _)| k.name == key.spec.name).map(|(_, v)| v.as_str())
    }

    /// Whether these keys put the kernel in inference mode (as the kernel decides).
    pub fn is_inference(&self) -> bool {
        self.get(&keys::PROMPT).is_some() || self.get(&keys::INTERACTIVE).is_some_and(|v| v != "0" && v != "off")
    }

    /// `key=value ...` in the key table's order.
    pub fn cmdline(&self) -> String {
        keys::KEYS
            .iter()
            .filter_map(|spec| self.values.iter().find(|(k, _)| k.name == spec.name))
            .map(|(k, v)| format!("{}={v}", k.name))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Joins command-line fragments with single spaces, skipping empty ones.
pub fn join_cmdline(parts: &[&str]) -> String {
    parts.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The default model's path in the cache (where `tools/fetch-model.sh` puts it).
pub fn default_model_path() -> Result<PathBuf> {
    axiom_testkit::model_path(axiom_testkit::DEFAULT_MODEL).map_err(|why| anyhow!(why))
}

/// The default model's path, from `tools/fetch-model.sh` (which downloads
/// and checks it on first use): the last line of its stdout.
pub fn default_model() -> Result<PathBuf> {
    fetch_model(None)
}

/// `--model` as given: an existing file, else the name of a model
/// `tools/fetch-model.sh --model NAME` knows (`smollm2-135m`,
/// `gemma3-270m`), fetched on first use and then taken from the cache; any
/// other value is returned as a path (its opener says it does not exist).
pub fn resolve_model(arg: &Path) -> Result<PathBuf> {
    if arg.exists() {
        return Ok(arg.to_path_buf());
    }
    match arg.to_str().and_then(|name| axiom_testkit::known_model_file(name).map(|file| (name, file))) {
        Some((name, file)) => {
            let cached = axiom_testkit::model_path(file).map_err(|why| anyhow!(why))?;
            // A cached file was checked by SHA-256 when the script stored it.
            if cached.is_file() {
                Ok(cached)
            } else {
                fetch_model(Some(name))
            }
        }
        None => Ok(arg.to_path_buf()),
    }
}

/// Runs `tools/fetch-model.sh [--model NAME]` and returns the path it prints
/// (the last line of its stdout).
fn fetch_model(name: Option<&str>) -> Result<PathBuf> {
    let script = workspace_root().join("tools/fetch-model.sh");
    let mut cmd = Command::new(&script);
    if let Some(name) = name {
        cmd.args(["--model", name]);
    }
    let out = cmd
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
    Ok(cache_dir()?.join("images").join(format!("{}-v{}.img", &hash[..16], axiom_engine::image::PACK_VERSION)))
}

/// The packed disk image of `model`, packing it on first use with
/// `pack(model, tmp)`. The image is written to a temporary file, padded to a
/// multiple of 4096 bytes, and renamed into place, so concurrent runs (and
/// threads) and interrupted packs never leave a partial image under the
/// final name.
pub fn cached_image(model: &Path, pack: impl FnOnce(&Path, &Path) -> Result<()>) -> Result<PathBuf> {
    let path = image_path_for(model)?;
    if path.is_file() {
        return Ok(path);
    }
    let dir = path.parent().expect("images dir");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // One temporary name per call: threads of one process (parallel tests)
    // may pack the same model at once.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{}-{call}.tmp",
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
    pub summary: Option<Summary<'static>>,
}

/// The answers in a run's telemetry, in order: each ends at a `@summary`
/// (one per prompt; several with `interactive=1`). Tokens after the last
/// `@summary` (a run cut short) form a final answer without summary.
pub fn answers(result: &RunResult) -> Vec<Answer> {
    let mut out = Vec::new();
    let mut cur = Answer::default();
    let mut open = false;
    for e in &result.events {
        if let Some(t) = e.read::<Token>() {
            open = true;
            cur.ids.push(t.id);
            cur.text.push_str(&t.text);
        } else if let Some(s) = e.read::<Summary>() {
            cur.summary = Some(s);
            out.push(std::mem::take(&mut cur));
            open = false;
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
    fn cmdline_has_only_the_keys_given() {
        let k = KernelArgs::default()
            .with(&keys::PROMPT, "hi there")
            .with(&keys::TOKENS, 16u32)
            .with(&keys::TEMP, 0.0)
            .with(&keys::BUDGET, "24M")
            .with(&keys::SLOTS, 2u32)
            .with(&keys::IO_CORE, "off");
        assert_eq!(k.cmdline(), "prompt=hi%20there tokens=16 temp=0 budget=24M slots=2 io_core=off");
        assert!(k.is_inference());
        let k = KernelArgs::default().with(&keys::INTERACTIVE, true).with(&keys::CHAT, true).with(&keys::VERIFY, "always").with(&keys::TELEMETRY, "layer");
        assert_eq!(k.cmdline(), "interactive=1 chat=1 verify=always telemetry=layer");
        assert!(!KernelArgs::default().is_inference());
        assert_eq!(join_cmdline(&["a=1", " ", "b=2 "]), "a=1 b=2");
        assert_eq!(KernelArgs::default().with(&keys::BUDGET, 40u64 << 20).get(&keys::BUDGET), Some("40M"));
    }

    #[test]
    fn values_the_kernel_refuses_are_refused_with_its_message() {
        let mut k = KernelArgs::default();
        let e = k.set(&keys::TOKENS.spec, "0").unwrap_err().to_string();
        assert_eq!(e, "command-line key 'tokens': value '0' is not an integer >= 1");
        assert!(k.set(&keys::VERIFY.spec, "sometimes").unwrap_err().to_string().ends_with("is not first or always"));
        assert!(k.set(&keys::TOP_P.spec, "1.5").is_err());
        k.set(&keys::TOKENS.spec, "8").unwrap();
        k.set(&keys::TOKENS.spec, "9").unwrap();
        assert_eq!(k.cmdline(), "tokens=9", "a key set again keeps the last value");
    }

    /// An answer's `@summary` as the kernel writes it (decode 1.5 tokens/s).
    const SUMMARY: &str = r#"@summary {"mode":"resident","compute_cores":1,"io_core":false,"io_core_idle":true,"layers":"repacked","prompt_tokens":3,"generated":2,"stop":"limit","ttft_ms":1.0,"prefill_ms":1.0,"prefill_tok_s":3.000,"decode_tok_s":1.500,"stream_wait_frac":0.0,"attn_frac":0.5,"ffn_frac":0.5,"barrier_frac":0.0,"bytes_per_token":0,"io_mib_per_s":0.0,"per_core_ms_per_token":[],"text":" Paris."}"#;

    #[test]
    fn answers_split_at_summaries() {
        let mut r = RunResult::default();
        for l in [
            r#"@prompt {"answer":0,"turn":0,"tokens":3,"new_tokens":3,"reused_tokens":0,"max_new":4,"chat":false,"text":"Hi"}"#,
            "@token {\"i\":0,\"id\":5,\"text\":\" Paris\",\"us\":1}",
            "@token {\"i\":1,\"id\":13,\"text\":\".\",\"us\":1}",
            SUMMARY,
            "@token {\"i\":0,\"id\":7,\"text\":\"x\",\"us\":1}",
        ] {
            r.push_line(l.to_string());
        }
        let a = answers(&r);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].ids, vec![5, 13]);
        assert_eq!(a[0].text, " Paris.");
        assert_eq!(a[0].summary.as_ref().map(|s| s.decode_tok_s), Some(1.5));
        assert_eq!(a[1].ids, vec![7]);
        assert!(a[1].summary.is_none());
    }
}
