//! QEMU integration tests of the kernel foundation (issue 2): SMP bring-up and
//! the lockstep barrier in x2APIC and xAPIC mode at 1, 2, 4 and 8 CPUs, GRUB
//! ISO boots on BIOS and UEFI, and the bad-input paths (no ACPI, unknown
//! command-line key, an exception, a panic), which must end cleanly, never
//! in the runner's timeout.
//!
//! QEMU runs are serialized (the host has two cores); each test prints the
//! serial log, which the harness shows when the test fails.

use std::sync::Mutex;
use std::time::Duration;

use axiom_proto::telemetry::events::{Barrier, Boot as BootEvent, Cpu, Error, MemSelfTest, SmpSummary, Warning};
use axiom_proto::telemetry::Hex;
use axiom_tools::qemu::{self, Boot, QemuOptions, RunResult, Verdict, EXIT_FAILURE_STATUS};

static QEMU: Mutex<()> = Mutex::new(());

fn run(opts: QemuOptions) -> RunResult {
    let _serial = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let kernel = qemu::build_kernel().expect("kernel builds");
    println!("--- qemu {:?}", opts.qemu_args(&kernel, &std::env::temp_dir()).unwrap_or_default());
    let result = qemu::run_kernel(&kernel, &opts, &mut |line| println!("{line}")).expect("QEMU runs");
    println!("--- verdict: {}", result.verdict());
    assert!(!result.timed_out, "the run hit the runner's timeout: the kernel hung");
    result
}

fn opts(smp: u32, cmdline: &str) -> QemuOptions {
    QemuOptions { smp, cmdline: cmdline.into(), timeout: Duration::from_secs(240), ..Default::default() }
}

/// `selftest=smp` on `n` CPUs: every CPU online, every counter check right,
/// one `@barrier` per CPU, `@done` ok.
fn smp_selftest(n: u32, xapic: bool, rounds: u32, spin_us: u32) {
    let mut o = opts(n, &format!("selftest=smp rounds={rounds} spin_us={spin_us}"));
    o.xapic = xapic;
    let r = run(o);
    assert_eq!(r.verdict(), Verdict::Success);
    let boot = r.first::<BootEvent>().expect("@boot");
    assert_eq!(boot.cpus_found, n as u64);
    assert_eq!(boot.cpus_online, n as u64, "every CPU came online");
    assert_eq!(boot.apic, if xapic { "xapic" } else { "x2apic" });
    assert!(boot.tsc_mhz > 100.0);
    let cpus: Vec<Cpu> = r.all::<Cpu>().collect();
    assert_eq!(cpus.len(), n as usize);
    assert_eq!(cpus[0].role, "bsp");
    // A self-test has no I/O core: every other CPU joins the barrier and computes.
    assert!(cpus[1..].iter().all(|c| c.role == "compute"), "roles: {:?}", cpus.iter().map(|c| &c.role).collect::<Vec<_>>());
    let mut ids: Vec<u64> = cpus.iter().map(|c| c.apic_id).collect();
    ids.dedup();
    assert_eq!(ids.len(), n as usize, "distinct APIC ids");
    let barriers: Vec<Barrier> = r.all::<Barrier>().collect();
    assert_eq!(barriers.len(), n as usize, "one @barrier per CPU");
    for b in &barriers {
        assert_eq!(b.rounds, rounds as u64);
        assert_eq!(b.counter_errors, 0);
        let w = &b.wait_ns;
        let (min, med, p99, max) = (w.min, w.median, w.p99, w.max);
        assert!(min <= med && med <= p99 && p99 <= max, "ordered wait statistics: {w:?}");
    }
    let s = r.first::<SmpSummary>().expect("@summary");
    assert_eq!(s.cpus, n as u64);
    assert!(s.counter_ok);
    assert_eq!(s.counter_errors, 0);
}

#[test]
fn smp1_x2apic() {
    smp_selftest(1, false, 10_000, 50);
}

#[test]
fn smp2_x2apic() {
    smp_selftest(2, false, 10_000, 50);
}

#[test]
fn smp4_x2apic() {
    smp_selftest(4, false, 10_000, 0);
}

/// 8 vCPUs on 2 host cores: correctness only, fewer rounds, park at once.
#[test]
fn smp8_x2apic() {
    smp_selftest(8, false, 2_000, 0);
}

#[test]
fn smp1_xapic() {
    smp_selftest(1, true, 10_000, 50);
}

#[test]
fn smp2_xapic() {
    smp_selftest(2, true, 10_000, 50);
}

#[test]
fn smp4_xapic() {
    smp_selftest(4, true, 10_000, 0);
}

#[test]
fn smp8_xapic() {
    smp_selftest(8, true, 2_000, 0);
}

fn iso_boot(boot: Boot) {
    let mut o = opts(2, "selftest=smp rounds=500");
    o.boot = boot;
    if boot == Boot::IsoUefi {
        o.machine = qemu::Machine::Q35;
    }
    let r = run(o);
    assert_eq!(r.verdict(), Verdict::Success);
    let boot = r.first::<BootEvent>().unwrap();
    assert_eq!(boot.boot, "multiboot2", "GRUB boots the kernel through Multiboot2");
    assert_eq!(boot.rsdp.as_deref(), Some("multiboot2"), "GRUB hands over the RSDP");
    assert_eq!(boot.cpus_online, 2);
    assert_eq!(boot.cmdline, "selftest=smp rounds=500");
}

#[test]
fn grub_iso_bios() {
    iso_boot(Boot::IsoBios);
}

#[test]
fn grub_iso_uefi() {
    iso_boot(Boot::IsoUefi);
}

#[test]
fn no_acpi_runs_on_the_bsp_alone() {
    let mut o = opts(2, "selftest=smp rounds=1000");
    o.no_acpi = true;
    let r = run(o);
    assert_eq!(r.verdict(), Verdict::Success);
    let warning = r.first::<Warning>().expect("a clear @warning");
    assert!(warning.msg.contains("running on the BSP alone"), "{warning:?}");
    let boot = r.first::<BootEvent>().unwrap();
    assert_eq!(boot.cpus_online, 1);
    assert!(!boot.acpi);
    assert_eq!(r.first::<SmpSummary>().unwrap().cpus, 1);
}

#[test]
fn unknown_cmdline_key_lists_valid_keys() {
    let r = run(opts(1, "selftest=smp bogus=1"));
    assert_eq!(r.exit_status, Some(EXIT_FAILURE_STATUS));
    let errors = r.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("unknown command-line key 'bogus'; valid keys: selftest"), "{}", errors[0]);
    for key in ["rounds", "spin_us", "heap", "max_cpus"] {
        assert!(errors[0].contains(key), "valid key {key} listed");
    }
    assert!(r.first::<BootEvent>().is_none(), "boot stops before bring-up");
}

#[test]
fn exception_on_an_ap_ends_in_error_not_hang() {
    let r = run(opts(2, "selftest=fault fault=pf"));
    assert_eq!(r.exit_status, Some(EXIT_FAILURE_STATUS));
    assert!(matches!(r.verdict(), Verdict::KernelFailed(_)));
    let e = r.first::<Error>().expect("@error");
    assert_eq!(e.kind.as_deref(), Some("exception"));
    assert_eq!(e.vector, Some(14));
    assert_eq!(e.cpu, Some(1), "the fault was raised on the AP");
    assert_eq!(e.cr2, Some(Hex(0x7f00_dead_0000)));
    assert!(e.rip.is_some());
    assert!(!r.done_ok());
}

#[test]
fn invalid_opcode_on_the_bsp_and_panic_end_in_error() {
    let r = run(opts(2, "selftest=fault fault=ud fault_cpu=0"));
    assert_eq!(r.exit_status, Some(EXIT_FAILURE_STATUS));
    let e = r.first::<Error>().expect("@error");
    assert_eq!((e.vector, e.cpu), (Some(6), Some(0)));

    let r = run(opts(2, "selftest=panic"));
    assert_eq!(r.exit_status, Some(EXIT_FAILURE_STATUS));
    let e = r.first::<Error>().expect("@error");
    assert_eq!(e.kind.as_deref(), Some("panic"));
    assert!(e.msg.contains("panicking on purpose"));
    assert!(e.location.unwrap().contains("selftest/fault.rs"));
}

#[test]
fn unanswering_cpu_is_reported_and_boot_continues() {
    // APIC id 2 gets INIT but never a SIPI, so it cannot answer.
    let r = run(opts(4, "selftest=smp rounds=500 spin_us=0 test_dead_cpu=2 ap_timeout_ms=100"));
    assert_eq!(r.verdict(), Verdict::Success);
    let w = r.first::<Warning>().expect("@warning for the silent CPU");
    assert!(w.msg.contains("APIC id 2 did not answer"), "{w:?}");
    let boot = r.first::<BootEvent>().unwrap();
    assert_eq!((boot.cpus_found, boot.cpus_online, boot.cpus_unanswered), (4, 3, 1));
    assert_eq!(boot.unanswered.as_ref().and_then(|u| u.first()).map(|u| u.apic_id), Some(2));
    let ids: Vec<u64> = r.all::<Cpu>().map(|c| c.apic_id).collect();
    assert_eq!(ids, [0, 1, 3]);
    assert_eq!(r.first::<SmpSummary>().unwrap().cpus, 3);
}

#[test]
fn memory_api_selftest() {
    let r = run(opts(2, "selftest=mem"));
    assert_eq!(r.verdict(), Verdict::Success);
    let m = r.first::<MemSelfTest>().expect("@mem");
    assert_eq!(m.dma_bytes, 3 * 4096 + 5);
    assert!(m.region_mib >= 256, "half of 1 GiB guest RAM reserved: {m:?}");
    // Every free frame of the 1 GiB guest was written and read back; none above 4 GiB.
    assert!(m.frames_checked >= (800 << 20) / 4096 && m.frames_above_4g == 0, "{m:?}");
}

/// `--mem 6G`: QEMU puts 3 GiB above the PCI hole, beyond 4 GiB. The
/// self-test writes and reads back every free frame there too, and the
/// region (from the largest free range) lies above 4 GiB.
#[test]
fn memory_selftest_6g_checks_every_frame_above_4g() {
    let mut o = opts(2, "selftest=mem");
    o.mem = "6G".into();
    let r = run(o);
    assert_eq!(r.verdict(), Verdict::Success);
    let boot = r.first::<BootEvent>().expect("@boot");
    assert!(boot.mem_usable_mib >= 6000, "{boot:?}");
    let m = r.first::<MemSelfTest>().expect("@mem");
    assert!(m.frames_above_4g >= (3u64 << 30) / 4096 - 16, "the 3 GiB above 4 GiB are checked: {m:?}");
    assert!(m.frames_checked >= (5900u64 << 20) / 4096, "{m:?}");
    assert!(m.highest_frame_end.0 >= 6 << 30, "{m:?}");
    assert!(m.region_phys.0 >= 1 << 32, "the largest free range is above 4 GiB: {m:?}");
}
