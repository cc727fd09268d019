//! The inference mode's settings, from the command line (whose keys and
//! values the key table has checked at boot) and the CPU count.

use alloc::string::String;

use axiom_engine::state::KvType;
use axiom_proto::cmdline::{keys, Cmdline, MAX_TEXT};

pub use axiom_proto::cmdline::ModelLocation;

/// Which telemetry the compute cores dump after each answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Telemetry {
    /// `@layer` per pass, layer and core.
    Layer,
    /// `@core_token` per pass and core (layers summed).
    Token,
    Off,
}

pub struct InferArgs {
    pub prompt: Option<String>,
    pub chat: bool,
    pub tokens: usize,
    pub temp: f32,
    pub top_p: f32,
    pub top_k: usize,
    /// `repeat_penalty=X`: the sampler's penalty on the last 64 context tokens (1 = off).
    pub repeat_penalty: f32,
    pub seed: u64,
    pub budget: Option<u64>,
    pub slots: Option<usize>,
    /// `pin=N`: stream with exactly N layers pinned.
    pub pin: Option<usize>,
    pub io_core: bool,
    pub verify_always: bool,
    pub telemetry: Telemetry,
    pub ctx: usize,
    pub kv_type: KvType,
    pub interactive: bool,
    pub model: ModelLocation,
    /// Repack the output head at boot (`pack_head=0` keeps ggml's layout).
    pub pack_head: bool,
    /// Resident mode: also repack every layer when memory allows (`repack=off` keeps ggml's layout).
    pub repack: bool,
}

impl InferArgs {
    /// `None` when the command line asks for no inference (boot check only).
    pub fn parse(cmd: &Cmdline, cpus: usize) -> Result<Option<InferArgs>, String> {
        let interactive = cmd.get(&keys::INTERACTIVE);
        let prompt = match cmd.get(&keys::PROMPT) {
            None => None,
            Some(encoded) => {
                let mut buf = [0u8; MAX_TEXT];
                Some(String::from(encoded.decode(&mut buf).map_err(|why| alloc::format!("prompt: {why}"))?))
            }
        };
        if prompt.is_none() && !interactive {
            return Ok(None);
        }
        let io_core = match cmd.get(&keys::IO_CORE) {
            None => cpus >= 2,
            Some(on_off) => on_off == "on",
        };
        if io_core && cpus < 2 {
            return Err(String::from("io_core=on needs at least 2 CPUs (one computes, one streams)"));
        }
        Ok(Some(InferArgs {
            prompt,
            chat: cmd.get(&keys::CHAT),
            tokens: cmd.get(&keys::TOKENS) as usize,
            temp: cmd.get(&keys::TEMP),
            top_p: cmd.get(&keys::TOP_P),
            top_k: cmd.get(&keys::TOP_K) as usize,
            repeat_penalty: cmd.get(&keys::REPEAT_PENALTY),
            seed: cmd.get(&keys::SEED),
            budget: cmd.get(&keys::BUDGET),
            slots: cmd.get(&keys::SLOTS).map(|k| k as usize),
            pin: cmd.get(&keys::PIN).map(|k| k as usize),
            io_core,
            verify_always: cmd.get(&keys::VERIFY) == "always",
            telemetry: match cmd.get(&keys::TELEMETRY) {
                "layer" => Telemetry::Layer,
                "off" => Telemetry::Off,
                _ => Telemetry::Token,
            },
            ctx: cmd.get(&keys::CTX) as usize,
            kv_type: KvType::from_name(cmd.get(&keys::KV_TYPE)).ok_or_else(|| String::from("kv_type: not a KV cache type"))?,
            interactive,
            model: cmd.get(&keys::MODEL),
            pack_head: cmd.get(&keys::PACK_HEAD),
            repack: cmd.get(&keys::REPACK) == "auto",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, cpus: usize) -> Result<Option<InferArgs>, String> {
        InferArgs::parse(&Cmdline::parse(text, keys::KEYS).unwrap(), cpus)
    }

    #[test]
    fn no_prompt_no_inference() {
        assert!(parse("tokens=5", 2).unwrap().is_none());
        assert!(parse("interactive=1", 2).unwrap().is_some());
    }

    #[test]
    fn defaults_and_values() {
        let a = parse("prompt=The%20capital%20of%20France%20is", 3).unwrap().unwrap();
        assert_eq!(a.prompt.as_deref(), Some("The capital of France is"));
        assert_eq!((a.tokens, a.temp, a.top_p, a.top_k, a.repeat_penalty, a.seed, a.ctx, a.kv_type), (32, 0.0, 1.0, 0, 1.0, 0, 512, KvType::F16));
        assert_eq!(parse("prompt=x kv_type=q8_0", 2).unwrap().unwrap().kv_type, KvType::Q8_0);
        assert_eq!(parse("prompt=x kv_type=f32", 2).unwrap().unwrap().kv_type, KvType::F32);
        assert!(a.io_core && !a.verify_always && a.pack_head && a.repack && !a.chat && !a.interactive);
        assert_eq!((a.budget, a.slots, a.pin, a.telemetry, a.model), (None, None, None, Telemetry::Token, ModelLocation::DEFAULT));
        assert_eq!(parse("prompt=x repeat_penalty=1.1", 2).unwrap().unwrap().repeat_penalty, 1.1);
        assert!(Cmdline::parse("prompt=x repeat_penalty=0", keys::KEYS).is_err(), "the penalty must be positive");
        let a = parse("prompt=x chat=1 tokens=7 temp=0.5 budget=40M slots=2 pin=5 io_core=off verify=always telemetry=layer repack=off pack_head=off", 3)
            .unwrap()
            .unwrap();
        assert!(a.chat && !a.io_core && a.verify_always && !a.repack && !a.pack_head);
        assert_eq!((a.tokens, a.temp, a.budget, a.slots, a.pin, a.telemetry), (7, 0.5, Some(40 << 20), Some(2), Some(5), Telemetry::Layer));
    }

    #[test]
    fn the_io_core_follows_the_cpu_count() {
        assert!(!parse("prompt=x", 1).unwrap().unwrap().io_core, "one CPU computes");
        assert_eq!(parse("prompt=x io_core=on", 1).err().unwrap(), "io_core=on needs at least 2 CPUs (one computes, one streams)");
    }
}
