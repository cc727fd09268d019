//! The inference mode's command-line keys, checked once at start.

use alloc::format;
use alloc::string::String;

use crate::cmdline::{parse_size, parse_u64, percent_decode, Cmdline, CmdlineError, MAX_WORDS};

/// Which telemetry the compute cores dump after each answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Telemetry {
    /// `@layer` per pass, layer and core.
    Layer,
    /// `@core_token` per pass and core (layers summed).
    Token,
    Off,
}

/// Where the image starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelLocation {
    /// `None`: the first active namespace.
    pub nsid: Option<u32>,
    /// Byte offset of the image inside the namespace (a multiple of the block size).
    pub offset: u64,
}

pub struct InferArgs {
    pub prompt: Option<String>,
    pub chat: bool,
    pub tokens: usize,
    pub temp: f32,
    pub top_p: f32,
    pub top_k: usize,
    pub seed: u64,
    pub budget: Option<u64>,
    pub slots: Option<usize>,
    pub io_core: bool,
    pub verify_always: bool,
    pub telemetry: Telemetry,
    pub ctx: usize,
    pub interactive: bool,
    pub model: ModelLocation,
    /// Repack the output head at boot (`pack_head=0` keeps ggml's layout).
    pub pack_head: bool,
    /// Resident mode: also repack every layer when memory allows (`repack=off` keeps ggml's layout).
    pub repack: bool,
}

/// Longest decoded prompt (the command line itself is at most 1 KiB).
const MAX_PROMPT: usize = 1024;

fn float(cmd: &Cmdline, key: &str, default: f32) -> Result<f32, String> {
    match cmd.get(key) {
        None => Ok(default),
        Some(v) => v.parse::<f32>().ok().filter(|x| x.is_finite()).ok_or_else(|| format!("{key}={v}: expected a number")),
    }
}

fn flag(cmd: &Cmdline, key: &str) -> Result<bool, String> {
    match cmd.get(key) {
        None | Some("0") | Some("off") => Ok(false),
        Some("") | Some("1") | Some("on") => Ok(true),
        Some(v) => Err(format!("{key}={v}: expected 1 or 0")),
    }
}

fn model_location(v: &str) -> Result<ModelLocation, String> {
    let mut loc = ModelLocation { nsid: None, offset: 0 };
    for part in v.split(',') {
        let bad = || format!("model={v}: expected ns:N and/or offset:BYTES (e.g. model=ns:1,offset:1M)");
        if let Some(n) = part.strip_prefix("ns:") {
            loc.nsid = Some(parse_u64(n).and_then(|n| u32::try_from(n).ok()).filter(|&n| n > 0).ok_or_else(bad)?);
        } else if let Some(o) = part.strip_prefix("offset:") {
            loc.offset = parse_size(o).ok_or_else(bad)?;
        } else {
            return Err(bad());
        }
    }
    Ok(loc)
}

impl InferArgs {
    /// `None` when the command line asks for no inference (boot check only).
    pub fn parse(cmd: &Cmdline, cpus: usize) -> Result<Option<InferArgs>, String> {
        let e = |e: CmdlineError| format!("{e}");
        let interactive = flag(cmd, "interactive")?;
        flag(cmd, "pack_head")?;
        let prompt = match cmd.get("prompt") {
            None => None,
            Some(v) => {
                let mut buf = [0u8; MAX_PROMPT];
                let n = percent_decode(v, &mut buf).map_err(|why| format!("prompt: {why}"))?;
                let text = core::str::from_utf8(&buf[..n]).map_err(|_| String::from("prompt: not valid UTF-8 after %-decoding"))?;
                Some(String::from(text))
            }
        };
        if prompt.is_none() && !interactive {
            return Ok(None);
        }
        let tokens = cmd.u64_or("tokens", 32).map_err(e)?;
        if tokens == 0 {
            return Err(String::from("tokens must be at least 1"));
        }
        let temp = float(cmd, "temp", 0.0)?;
        if temp < 0.0 {
            return Err(String::from("temp must be >= 0"));
        }
        let top_p = float(cmd, "top_p", 1.0)?;
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(String::from("top_p must be in (0, 1]"));
        }
        let ctx = cmd.u64_or("ctx", 512).map_err(e)?;
        if !(16..=1 << 17).contains(&ctx) {
            return Err(String::from("ctx must be between 16 and 131072"));
        }
        let slots = match cmd.get("slots") {
            None => None,
            Some(_) => Some(cmd.u64_or("slots", 0).map_err(e)? as usize),
        };
        let budget = match cmd.get("budget") {
            None => None,
            Some(_) => Some(cmd.size_or("budget", 0).map_err(e)?),
        };
        let io_default = if cpus >= 2 { "on" } else { "off" };
        let io_core = cmd.choice_or("io_core", &["on", "off"], "on or off", io_default).map_err(e)? == "on";
        if io_core && cpus < 2 {
            return Err(String::from("io_core=on needs at least 2 CPUs (one computes, one streams)"));
        }
        let verify = cmd.choice_or("verify", &["first", "always"], "first or always", "first").map_err(e)?;
        let telemetry = match cmd.choice_or("telemetry", &["layer", "token", "off"], "layer, token or off", "token").map_err(e)? {
            "layer" => Telemetry::Layer,
            "off" => Telemetry::Off,
            _ => Telemetry::Token,
        };
        let model = match cmd.get("model") {
            None => ModelLocation { nsid: None, offset: 0 },
            Some(v) => model_location(v)?,
        };
        const _: () = assert!(MAX_WORDS >= 24, "room for every inference key");
        Ok(Some(InferArgs {
            prompt,
            chat: flag(cmd, "chat")?,
            tokens: tokens as usize,
            temp,
            top_p,
            top_k: cmd.u64_or("top_k", 0).map_err(e)? as usize,
            seed: cmd.u64_or("seed", 0).map_err(e)?,
            budget,
            slots,
            io_core,
            verify_always: verify == "always",
            telemetry,
            ctx: ctx as usize,
            interactive,
            model,
            pack_head: cmd.get("pack_head") != Some("0"),
            repack: cmd.choice_or("repack", &["auto", "off"], "auto or off", "auto").map_err(e)? == "auto",
        }))
    }
}
