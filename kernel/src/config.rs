//! The one table of kernel command-line keys. Add a key with one line; an
//! unknown key stops the boot with `@error` listing these keys.

use crate::cmdline::KeySpec;

pub static KEYS: &[KeySpec] = &[
    KeySpec { name: "selftest", help: "run a diagnostic instead of the default mode (smp, fault, panic, mem, ...)" },
    KeySpec { name: "rounds", help: "selftest=smp barrier rounds (default 10000)" },
    KeySpec { name: "spin_us", help: "barrier spin before parking, microseconds (default 50)" },
    KeySpec { name: "park", help: "how waiting cores sleep: hlt or mwait (default hlt)" },
    KeySpec { name: "heap", help: "kernel heap size, e.g. 64M (default 64M)" },
    KeySpec { name: "max_cpus", help: "start at most this many CPUs (default all)" },
    KeySpec { name: "ap_timeout_ms", help: "per-CPU start-up timeout in ms (default 1000)" },
    KeySpec { name: "fault", help: "selftest=fault exception: pf, gp, ud or de (default pf)" },
    KeySpec { name: "fault_cpu", help: "selftest=fault CPU index (default the last online CPU)" },
    KeySpec { name: "test_dead_cpu", help: "testing: never send SIPI to this APIC id (exercises the start-up timeout)" },
    KeySpec { name: "nvme_qd", help: "selftest=nvme commands in flight, 1..queue size-1 or max (default max)" },
    KeySpec { name: "nvme_xfer", help: "selftest=nvme bytes per command below MDTS, e.g. 4K (default MDTS)" },
    KeySpec { name: "nvme_crc", help: "selftest=nvme CRC32C of the namespace: on or off (default on)" },
    KeySpec { name: "prompt", help: "inference: the prompt, %-encoded (%20 for a space)" },
    KeySpec { name: "chat", help: "inference: 1 wraps the prompt in the model's chat template" },
    KeySpec { name: "tokens", help: "inference: most tokens to generate (default 32)" },
    KeySpec { name: "temp", help: "inference: sampling temperature, 0 = greedy (default 0)" },
    KeySpec { name: "top_p", help: "inference: nucleus sampling threshold in (0, 1] (default 1)" },
    KeySpec { name: "top_k", help: "inference: keep the K most likely tokens, 0 = all (default 0)" },
    KeySpec { name: "seed", help: "inference: sampling seed (default 0)" },
    KeySpec { name: "ctx", help: "inference: context length in tokens (default 512)" },
    KeySpec { name: "budget", help: "inference: memory for weights (globals + layer slots), e.g. 40M; smaller than the model streams" },
    KeySpec { name: "slots", help: "inference: stream with exactly K layer slots (2..layers)" },
    KeySpec { name: "io_core", help: "inference: on (last CPU streams weights) or off (compute cores load synchronously)" },
    KeySpec { name: "verify", help: "inference: CRC32C-check layer extents the first time (first) or on every read (always)" },
    KeySpec { name: "telemetry", help: "inference: per-core timings per layer, per token (default) or off" },
    KeySpec { name: "model", help: "inference: where the image is: ns:N and/or offset:BYTES (default: first namespace, offset 0)" },
    KeySpec { name: "pack_head", help: "inference: 1 (default) repacks the output head at boot for faster matmuls, 0 keeps the file layout" },
    KeySpec { name: "repack", help: "inference: auto (default) keeps a repacked copy of resident layers when memory allows, off computes on the file layout" },
    KeySpec { name: "interactive", help: "inference: 1 reads prompts line by line from the serial port (/quit ends)" },
];
