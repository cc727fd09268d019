//! THE table of kernel command-line keys. Adding a key is one entry here:
//! the kernel accepts and checks it (and lists it when a key is wrong), a
//! key with a `flag` becomes a `cargo axiom run` flag that writes it, and
//! `cargo axiom keys --update-docs` puts it in README.md and
//! docs/running.md (a test fails while they disagree with this table). The
//! code that acts on a key reads it with `Cmdline::get(&keys::NAME)`.

use super::{About, Choice, Flag, Float, FloatRange, Group, Int, IntOrMax, Key, KeySpec, Location, OptChoice, OptInt, OptSize, Size, Text, MAX_TEXT};

/// Declares each key as a `pub static` and lists them all in [`KEYS`], in
/// this order (the order the host writes them in).
macro_rules! keys {
    ($($(#[$doc:meta])* $name:ident: $kind:ty = $make:expr;)*) => {
        $($(#[$doc])* pub static $name: Key<$kind> = $make;)*
        /// Every key, in table order.
        pub static KEYS: &[&KeySpec] = &[$(&$name.spec),*];
    };
}

const fn about(name: &'static str, group: Group, help: &'static str) -> About {
    About { name, group, help, default_note: None, flag: None }
}

const fn noted(mut a: About, note: &'static str) -> About {
    a.default_note = Some(note);
    a
}

const fn flag(mut a: About, flag: &'static str) -> About {
    a.flag = Some(flag);
    a
}

const ANY: u64 = u64::MAX;
const NON_NEGATIVE: FloatRange = FloatRange { min: 0.0, min_open: false, max: f32::INFINITY };
const POSITIVE: FloatRange = FloatRange { min: 0.0, min_open: true, max: f32::INFINITY };
const PROBABILITY: FloatRange = FloatRange { min: 0.0, min_open: true, max: 1.0 };
const ON_OFF: &[&str] = &["on", "off"];

use Group::{Boot, Inference, SelfTest};

keys! {
    // The mode first: the unknown-key message starts with it.
    SELFTEST: OptChoice = Key::<OptChoice>::new(
        about("selftest", SelfTest, "run a diagnostic instead of the default mode"),
        &["smp", "fault", "panic", "mem", "nvme"],
    );

    // --- The boot ---------------------------------------------------------
    HEAP: Size = Key::<Size>::new(about("heap", Boot, "kernel heap size"), 64 << 20);
    MAX_CPUS: OptInt = Key::<OptInt>::new(noted(about("max_cpus", Boot, "start at most this many CPUs (0 counts as 1)"), "all"), 0, ANY);
    AP_TIMEOUT_MS: Int = Key::<Int>::new(about("ap_timeout_ms", Boot, "per-CPU start-up timeout in ms"), 0, ANY, 1000);
    SPIN_US: Int = Key::<Int>::new(about("spin_us", Boot, "barrier spin before parking, microseconds"), 0, ANY, 50);
    PARK: Choice = Key::<Choice>::new(about("park", Boot, "how waiting cores sleep"), &["hlt", "mwait"], "hlt");
    CONSOLE: Choice = Key::<Choice>::new(
        about("console", Boot, "where the human-readable text goes: the serial line, the framebuffer (screen) or both; @events stay on serial"),
        &["both", "serial", "fb"],
        "both",
    );
    TEST_DEAD_CPU: OptInt = Key::<OptInt>::new(
        about("test_dead_cpu", Boot, "testing: never send SIPI to this APIC id (exercises the start-up timeout)"),
        0,
        u32::MAX as u64,
    );

    // --- Self-tests (`selftest=` is first, above) ---------------------------
    ROUNDS: Int = Key::<Int>::new(about("rounds", SelfTest, "selftest=smp barrier rounds"), 1, ANY, 10_000);
    FAULT: Choice = Key::<Choice>::new(about("fault", SelfTest, "selftest=fault exception"), &["pf", "gp", "ud", "de"], "pf");
    FAULT_CPU: OptInt = Key::<OptInt>::new(noted(about("fault_cpu", SelfTest, "selftest=fault CPU index"), "the last online CPU"), 0, ANY);
    NVME_QD: IntOrMax = Key::<IntOrMax>::new(about("nvme_qd", SelfTest, "selftest=nvme commands in flight (up to the queue size - 1)"), 1, ANY);
    NVME_XFER: OptSize = Key::<OptSize>::new(noted(about("nvme_xfer", SelfTest, "selftest=nvme bytes per command, at most MDTS"), "MDTS"));
    NVME_CRC: Choice = Key::<Choice>::new(about("nvme_crc", SelfTest, "selftest=nvme CRC32C of the namespace"), ON_OFF, "on");

    // --- Inference (in the order `cargo axiom run` writes them) ------------
    PROMPT: Text = Key::<Text>::new(
        flag(about("prompt", Inference, "the prompt (on the command line every byte outside A-Za-z0-9._~- is %XX)"), "prompt"),
        MAX_TEXT,
    );
    INTERACTIVE: Flag = Key::<Flag>::new(
        flag(about("interactive", Inference, "read prompts line by line from the serial port (/quit ends)"), "interactive"),
        false,
    );
    CHAT: Flag = Key::<Flag>::new(flag(about("chat", Inference, "wrap the prompt in the model's chat template"), "chat"), false);
    TOKENS: Int = Key::<Int>::new(flag(about("tokens", Inference, "most tokens to generate"), "tokens"), 1, ANY, 32);
    TEMP: Float = Key::<Float>::new(flag(about("temp", Inference, "sampling temperature, 0 = greedy"), "temp"), NON_NEGATIVE, 0.0);
    TOP_P: Float = Key::<Float>::new(flag(about("top_p", Inference, "nucleus sampling mass, 1 = off"), "top-p"), PROBABILITY, 1.0);
    TOP_K: Int = Key::<Int>::new(flag(about("top_k", Inference, "keep the N most likely tokens, 0 = all"), "top-k"), 0, ANY, 0);
    REPEAT_PENALTY: Float = Key::<Float>::new(
        flag(about("repeat_penalty", Inference, "divide the logits of the last 64 context tokens by X (negative ones: times X), 1 = off"), "repeat-penalty"),
        POSITIVE,
        1.0,
    );
    SEED: Int = Key::<Int>::new(flag(about("seed", Inference, "sampling seed"), "seed"), 0, ANY, 0);
    BUDGET: OptSize = Key::<OptSize>::new(flag(
        noted(
            about("budget", Inference, "memory for weights (globals + layer slots); below the model size the kernel streams layers"),
            "the largest free range minus the KV cache and activations",
        ),
        "budget",
    ));
    SLOTS: OptInt = Key::<OptInt>::new(
        flag(about("slots", Inference, "stream through exactly N layer slots (2 to the layer count); alone, every layer streams"), "slots"),
        0,
        ANY,
    );
    PIN: OptInt = Key::<OptInt>::new(
        flag(
            noted(
                about("pin", Inference, "keep exactly N layers in memory and stream the rest every token (0 to layers - 1)"),
                "as many as the budget holds beside the slots",
            ),
            "pin",
        ),
        0,
        ANY,
    );
    IO_CORE: OptChoice = Key::<OptChoice>::new(
        flag(
            noted(about("io_core", Inference, "on: the last CPU streams weights; off: every CPU computes and loads synchronously"), "on with 2+ CPUs"),
            "io-core",
        ),
        ON_OFF,
    );
    VERIFY: Choice = Key::<Choice>::new(
        flag(about("verify", Inference, "CRC32C of each layer on its first read or on every read"), "verify"),
        &["first", "always"],
        "first",
    );
    TELEMETRY: Choice = Key::<Choice>::new(
        flag(about("telemetry", Inference, "per-core timings: @layer per layer, @core_token per pass, or none"), "telemetry"),
        &["layer", "token", "off"],
        "token",
    );
    CTX: Int = Key::<Int>::new(flag(about("ctx", Inference, "context length in tokens (at most the model's training context)"), "ctx"), 16, 1 << 17, 512);
    KV_TYPE: Choice = Key::<Choice>::new(
        flag(about("kv_type", Inference, "KV cache type: f16 (half of f32's memory), q8_0 (about a quarter), f32 (the reference)"), "kv-type"),
        &["f16", "q8_0", "f32"],
        "f16",
    );
    MODEL: Location = Key::<Location>::new(flag(
        noted(
            about("model", Inference, "where the packed image is on the NVMe disk: a GPT partition by name, or a namespace and byte offset"),
            "the GPT partition named axiom-model (or of AXIOM's type GUID) on any namespace; without GPT, the first namespace at offset 0",
        ),
        "model-at",
    ));
    REPACK: Choice = Key::<Choice>::new(
        flag(about("repack", Inference, "auto: resident layers also kept in the engine's repacked layout when memory allows; off: the file layout"), "repack"),
        &["auto", "off"],
        "auto",
    );
    PACK_HEAD: Flag = Key::<Flag>::new(flag(about("pack_head", Inference, "repack the output head at boot (0 keeps the file layout)"), "pack-head"), true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::{Cmdline, CmdlineError};
    use std::string::ToString;

    #[test]
    fn names_and_flags_are_unique_and_well_formed() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(k.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{}", k.name);
            assert!(KEYS[..i].iter().all(|o| o.name != k.name), "{} twice", k.name);
            if let Some(f) = k.flag {
                assert!(f.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "flag {f}");
                assert!(KEYS[..i].iter().all(|o| o.flag != Some(f)), "flag {f} twice");
            }
            assert!(!k.help.is_empty() && !k.help.ends_with('.'), "{}: help", k.name);
        }
    }

    #[test]
    fn every_default_is_a_valid_value_of_its_key() {
        for k in KEYS {
            if let Some(d) = k.ty.default_text() {
                let text = d.to_string();
                assert_eq!(k.check(&text), Ok(()), "{}: default {text}", k.name);
            }
        }
    }

    #[test]
    fn the_unknown_key_message_fits_in_one_telemetry_event() {
        let msg = Cmdline::parse("bogus=1", KEYS).unwrap_err().to_string();
        assert!(matches!(Cmdline::parse("bogus=1", KEYS), Err(CmdlineError::UnknownKey { .. })));
        // @error {"msg":"..."} within the kernel's 4 KiB event buffer, with room for escapes.
        assert!(msg.len() < crate::telemetry::MAX_EVENT - 256, "{} bytes", msg.len());
        for k in KEYS {
            assert!(msg.contains(&std::format!("{} ({})", k.name, k.help)), "{} listed", k.name);
        }
    }

    #[test]
    fn the_boot_reads_these_values() {
        let c = Cmdline::parse("axiom-kernel selftest=smp rounds=1000 spin_us=0 heap=128M park=mwait nvme_qd=max", KEYS).unwrap();
        assert_eq!(c.get(&SELFTEST), Some("smp"));
        assert_eq!((c.get(&ROUNDS), c.get(&SPIN_US), c.get(&HEAP), c.get(&PARK)), (1000, 0, 128 << 20, "mwait"));
        assert_eq!((c.get(&MAX_CPUS), c.get(&AP_TIMEOUT_MS), c.get(&NVME_QD)), (None, 1000, crate::cmdline::OrMax::Max));
        assert_eq!(c.get(&CONSOLE), "both");
        assert_eq!(Cmdline::parse("console=fb", KEYS).unwrap().get(&CONSOLE), "fb");
        assert!(Cmdline::parse("console=vga", KEYS).is_err());
        let c = Cmdline::parse("prompt=Hi tokens=16 temp=0.7 top_p=0.9 io_core=off pack_head=0", KEYS).unwrap();
        assert_eq!((c.get(&TOKENS), c.get(&TEMP), c.get(&TOP_P), c.get(&IO_CORE)), (16, 0.7, 0.9, Some("off")));
        assert_eq!((c.get(&PACK_HEAD), c.get(&CHAT), c.get(&CTX), c.get(&TELEMETRY)), (false, false, 512, "token"));
        assert_eq!((c.get(&BUDGET), c.get(&SLOTS), c.get(&REPACK), c.get(&KV_TYPE)), (None, None, "auto", "f16"));
        let e = Cmdline::parse("tokens=0", KEYS).unwrap_err().to_string();
        assert_eq!(e, "command-line key 'tokens': value '0' is not an integer >= 1");
    }
}
