//! AXIOM kernel binary: boot, bring up every CPU, then run the requested mode.
//!
//! Init order on the BSP (`kmain`): serial console; per-CPU data, GDT/TSS
//! (IST stacks) and IDT, so any exception from here on is reported; boot
//! information; command line; frames, identity map and heap; ACPI (MADT,
//! HPET); LAPIC; TSC calibration; AP start-up; roles; `@boot` and `@cpu`;
//! then the selected mode and `@done`. APs enter at `smp::startup::ap_main`.
#![no_std]
#![no_main]

extern crate alloc;

mod config;
mod console;
mod cpu;
mod infer;
mod mem;
mod platform;
mod power;
mod rt;
mod selftest;
mod smp;
mod storage;
mod telemetry;
mod tsc;

use core::cell::UnsafeCell;
use core::fmt::Write;

use axiom_kernel::bootinfo::BootInfo;
use axiom_kernel::cmdline::Cmdline;
use axiom_kernel::json::FixedBuf;

use cpu::gdt::IST_TOTAL;
use smp::launch::{LaunchConfig, ParkMethod};
use smp::percpu::{self, PerCpu};

core::arch::global_asm!(include_str!("boot/entry.s"), options(att_syntax));

/// The BSP's per-CPU block and IST stacks live in .bss, so exceptions are
/// reported before any memory is set up.
static BSP_CPU: PerCpu = PerCpu::new();

#[repr(C, align(16))]
struct IstStacks(UnsafeCell<[u8; IST_TOTAL]>);
// SAFETY: only the CPU (hardware) uses these bytes, as the BSP's IST stacks.
unsafe impl Sync for IstStacks {}
static BSP_IST: IstStacks = IstStacks(UnsafeCell::new([0; IST_TOTAL]));

/// A boot step failed: report it and stop with a failing exit code.
fn fail(msg: core::fmt::Arguments) -> ! {
    telemetry::error(msg);
    power::fail()
}

#[no_mangle]
pub extern "C" fn kmain(magic: u32, info_addr: u32) -> ! {
    // Before anything else: the BIOS left the PIT ticking into the 8259s.
    mask_legacy_pic();
    console::init();
    println!("AXIOM kernel {} booting", env!("CARGO_PKG_VERSION"));
    cpu::idt::init();
    percpu::register(&BSP_CPU, 0);
    percpu::install(&BSP_CPU, BSP_IST.0.get() as u64);

    let info = match BootInfo::parse(magic, info_addr as u64, &mem::BootPhysMem) {
        Ok(i) => i,
        Err(e) => fail(format_args!("{e}")),
    };
    // The command line is copied into BootInfo; keep it for the whole run.
    let info: &'static BootInfo = alloc_static_bootinfo(info);
    let cmd = match Cmdline::parse(info.cmdline(), config::KEYS) {
        Ok(c) => c,
        Err(e) => fail(format_args!("{e}")),
    };
    if info.cmdline_truncated {
        telemetry::warning(format_args!("command line longer than {} bytes was cut", axiom_kernel::bootinfo::MAX_CMDLINE));
    }
    if let Err(e) = boot(info, &cmd) {
        fail(format_args!("{}", e.as_str()));
    }
    power::success()
}

/// BootInfo is large (the memory map); keep one copy in .bss rather than on the stack.
fn alloc_static_bootinfo(info: BootInfo) -> &'static BootInfo {
    struct Slot(UnsafeCell<Option<BootInfo>>);
    // SAFETY: written once by the BSP before any AP exists, read-only after.
    unsafe impl Sync for Slot {}
    static SLOT: Slot = Slot(UnsafeCell::new(None));
    // SAFETY: see the Sync impl; this runs once, on the BSP.
    unsafe { (*SLOT.0.get()).insert(info) }
}

type BootError = FixedBuf<512>;

fn err(args: core::fmt::Arguments) -> BootError {
    let mut b = BootError::new();
    let _ = b.write_fmt(args);
    b
}

fn boot(info: &'static BootInfo, cmd: &Cmdline<'static>) -> Result<(), BootError> {
    let bad = |e: axiom_kernel::cmdline::CmdlineError| err(format_args!("{e}"));
    let heap = cmd.size_or("heap", 64 << 20).map_err(bad)?;
    let max_cpus = cmd.u64_or("max_cpus", axiom_kernel::MAX_CPUS as u64).map_err(bad)?.max(1) as usize;
    let ap_timeout_ms = cmd.u64_or("ap_timeout_ms", 1000).map_err(bad)?;
    let spin_us = cmd.u64_or("spin_us", 50).map_err(bad)?;
    let dead_cpu = match cmd.get("test_dead_cpu") {
        None => None,
        Some(_) => Some(cmd.u64_or("test_dead_cpu", 0).map_err(bad)? as u32),
    };
    let park = cmd.choice_or("park", &["hlt", "mwait"], "hlt or mwait", "hlt").map_err(bad)?;
    let selftest = match cmd.get("selftest") {
        None => None,
        Some(name) => Some(selftest::find(name).ok_or_else(|| {
            err(format_args!("unknown selftest '{name}'; valid selftests: {}", selftest::names()))
        })?),
    };

    if info.memory_map().is_empty() || info.regions_dropped > 0 {
        telemetry::warning(format_args!("memory map has {} entries ({} dropped)", info.memory_map().len(), info.regions_dropped));
    }
    mem::init(info, heap).map_err(|e| err(format_args!("memory setup failed: {e}")))?;

    let features = cpu::features::detect();
    let platform = platform::discover(info);
    let bsp_apic = smp::lapic::init_this_cpu().map_err(|e| err(format_args!("LAPIC setup failed: {e}")))?;
    BSP_CPU.set_apic_id_public(bsp_apic);
    BSP_CPU.mark_online();
    let tsc_source = tsc::calibrate(platform.hpet_base).map_err(|e| err(format_args!("{e}")))?;
    let park = if park == "mwait" {
        if !features.monitor {
            return Err(err(format_args!("park=mwait: this CPU has no MONITOR/MWAIT")));
        }
        ParkMethod::Mwait
    } else {
        ParkMethod::Hlt
    };
    smp::launch::configure(LaunchConfig { spin_cycles: tsc::us_to_cycles(spin_us), park });

    let (found, disabled, unanswered) = match &platform.madt {
        Some(madt) => {
            if !madt.enabled_cpus().any(|c| c.apic_id == bsp_apic) {
                telemetry::warning(format_args!("the BSP (APIC id {bsp_apic}) is not listed in the MADT"));
            }
            if madt.cpus_over_limit > 0 {
                telemetry::warning(format_args!("{} CPUs beyond the kernel's limit of {} are ignored", madt.cpus_over_limit, axiom_kernel::MAX_CPUS));
            }
            let r = smp::startup::start_aps(madt, bsp_apic, ap_timeout_ms, max_cpus, dead_cpu);
            (r.found, r.disabled, r.unanswered)
        }
        None => (1, 0, alloc::vec::Vec::new()),
    };
    // Inference with an I/O core: the last CPU streams weights (see smp::assign_roles).
    let io_core = cmd.get("io_core") != Some("off") && selftest.is_none() && (cmd.get("prompt").is_some() || cmd.get("interactive").is_some());
    smp::assign_roles(io_core);

    let stats = mem::stats(info);
    let online = smp::online_count();
    telemetry::emit("boot", |o| {
        o.u64("cpus_found", found as u64).u64("cpus_online", online as u64);
        o.u64("cpus_disabled", disabled as u64).u64("cpus_unanswered", unanswered.len() as u64);
        if !unanswered.is_empty() {
            o.array("unanswered", |a| {
                for u in &unanswered {
                    a.object(|x| {
                        x.u64("apic_id", u.apic_id as u64).str("stage", u.progress.name());
                    });
                }
            });
        }
        o.str("apic", smp::lapic::mode().name());
        o.f64("tsc_mhz", tsc::mhz(), 1).str("tsc_source", tsc_source.name()).bool("tsc_invariant", features.invariant_tsc);
        o.str("boot", info.protocol.name()).bool("acpi", platform.madt.is_some());
        if let Some(r) = &platform.rsdp {
            o.str("rsdp", r.source.name());
        }
        o.u64("mem_usable_mib", stats.usable_bytes >> 20).u64("mem_free_mib", stats.free_bytes >> 20);
        o.u64("heap_mib", stats.heap_bytes >> 20).u64("largest_free_mib", mem::largest_free() >> 20);
        o.bool("avx", features.avx).bool("avx2", features.avx2).bool("fma", features.fma).bool("avx512f", features.avx512f);
        o.fmt("xcr0", format_args!("{:#x}", features.xcr0));
        if let Some(fb) = &info.framebuffer {
            o.object("framebuffer", |f| {
                f.u64("width", fb.width as u64).u64("height", fb.height as u64).u64("bpp", fb.bpp as u64);
            });
        }
        o.str("cmdline", info.cmdline());
    });
    for c in smp::online_cpus() {
        telemetry::emit("cpu", |o| {
            o.u64("id", c.index() as u64).u64("apic_id", c.apic_id() as u64).str("role", c.role().name());
        });
    }

    match selftest {
        Some(t) => {
            println!("running selftest '{}': {}", t.name, t.about);
            if let Err(msg) = (t.run)(cmd) {
                return Err(err(format_args!("selftest {} failed: {msg}", t.name)));
            }
        }
        None => {
            let rsdp = platform.rsdp.as_ref();
            match infer::run(cmd, rsdp) {
                Ok(true) => {}
                Ok(false) => println!("no mode requested (prompt=..., interactive=1 or selftest=...): boot check only"),
                Err(msg) => return Err(err(format_args!("{msg}"))),
            }
        }
    }
    telemetry::done_ok();
    Ok(())
}

/// Mask both 8259 PICs: all interrupts come through the LAPIC.
fn mask_legacy_pic() {
    cpu::port::outb(0x21, 0xFF);
    cpu::port::outb(0xA1, 0xFF);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let cpu = percpu::current_index();
    let loc = info.location();
    println!("!!! CPU {cpu}: panic: {}", info.message());
    telemetry::emit("error", |o| {
        o.fmt("msg", format_args!("CPU {cpu} panicked: {}", info.message()));
        o.str("kind", "panic").u64("cpu", cpu as u64);
        if let Some(l) = loc {
            o.fmt("location", format_args!("{}:{}", l.file(), l.line()));
        }
    });
    power::fail()
}
