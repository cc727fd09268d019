//! The one table of kernel command-line keys. Add a key with one line; an
//! unknown key stops the boot with `@error` listing these keys.

use axiom_kernel::cmdline::KeySpec;

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
];
