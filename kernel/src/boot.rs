//! The boot CPU's path, from the hardware layer's entry to the end of the
//! run, as named steps. When `main` starts, the hardware layer has masked
//! the PICs, set up COM1, the IDT and this CPU's GDT/TSS/per-CPU block, and
//! parsed the boot information.
//!
//! 1. fault reports on (`@error` for any exception), the command line;
//! 2. memory (frames, identity map, heap), ACPI (MADT, HPET, MCFG), this
//!    CPU's LAPIC, the TSC, the launch settings;
//! 3. the APs, the mode (self-test or inference) and, from it, the roles;
//! 4. `@boot` and `@cpu`, the mode itself, `@done`.

// Boot errors are formatted into a fixed buffer, returned by value: the
// first steps run before the heap exists.
#![allow(clippy::result_large_err)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use axiom_engine::cpu::CpuFeatures;
use axiom_hw::acpi::{self, Platform, TableError};
use axiom_hw::boot::info::{BootInfo, BootInfoError, MAX_CMDLINE};
use axiom_hw::cpu::facts::CpuFacts;
use axiom_hw::cpu::percpu as hwcpu;
use axiom_hw::{apic, mem, power, time};
use axiom_proto::cmdline::{keys, Cmdline};
use axiom_proto::json::FixedBuf;
use axiom_proto::telemetry::events::{self, Framebuffer, Unanswered};
use axiom_proto::telemetry::Hex;

use crate::infer::{self, InferArgs};
use crate::selftest::{self, SelfTest};
use crate::smp::launch::{self, LaunchConfig};
use crate::smp::startup::{self, StartOptions, StartReport};
use crate::smp::{self, ParkMethod};
use crate::{console, faults, println, screen, telemetry};
use axiom_screen::Style;

/// A boot step failed. Fixed-size: the first steps run before the heap exists.
type BootError = FixedBuf<512>;

fn err(args: core::fmt::Arguments) -> BootError {
    let mut b = BootError::new();
    let _ = b.write_fmt(args);
    b
}

/// Report `msg` and stop with a failing exit code.
fn fail(msg: core::fmt::Arguments) -> ! {
    telemetry::error(msg);
    power::fail()
}

/// What a mode gets from the boot.
pub struct Context<'a> {
    pub cmd: &'a Cmdline<'static>,
    pub platform: &'a Platform,
}

/// What the hardware layer needs to know about the CPU, read once through
/// the engine's CPUID module (the one place that decodes CPUID; the
/// hardware layer's entry calls this before anything else).
pub fn cpu_facts() -> CpuFacts {
    let f = CpuFeatures::detect();
    CpuFacts {
        x2apic: f.x2apic,
        monitor: f.monitor,
        hypervisor: f.hypervisor,
        tsc_khz: f.tsc_leaf.and_then(|l| l.tsc_khz()),
        base_mhz: f.base_mhz,
    }
}

/// The kernel's entry on the boot CPU (see the module docs).
pub fn main(info: Result<&'static BootInfo, BootInfoError>) -> ! {
    faults::install();
    println!("AXIOM kernel {} booting", env!("CARGO_PKG_VERSION"));
    let info = info.unwrap_or_else(|e| fail(format_args!("{e}")));
    let cmd = read_cmdline(info);
    if let Err(e) = run(info, &cmd) {
        fail(format_args!("{}", e.as_str()));
    }
    power::success()
}

fn run(info: &'static BootInfo, cmd: &Cmdline<'static>) -> Result<(), BootError> {
    let settings = Settings::parse(cmd)?;
    set_up_memory(info, settings.heap)?;
    start_screen(info, cmd.get(&keys::CONSOLE));
    let platform = acpi::discover(info);
    warn_about_acpi(&platform);
    let bsp_apic = bring_up_this_cpu()?;
    let tsc_source = time::calibrate(platform.hpet.ok()).map_err(|e| err(format_args!("{e}")))?;
    let features = configure_launches(&settings)?;
    let cpus = start_aps(&platform, bsp_apic, &settings);
    let mode = Mode::choose(cmd, settings.selftest)?;
    smp::assign_roles(mode.has_io_core());
    report_boot(info, &platform, &cpus, tsc_source, &features);
    report_cpus();
    run_mode(mode, &Context { cmd, platform: &platform })?;
    telemetry::done_ok();
    Ok(())
}

/// The command line, every key and value checked against the key table
/// ([`keys::KEYS`]; an unknown key stops the boot with the list of valid keys).
fn read_cmdline(info: &'static BootInfo) -> Cmdline<'static> {
    let cmd = Cmdline::parse(info.cmdline(), keys::KEYS).unwrap_or_else(|e| fail(format_args!("{e}")));
    if info.cmdline_truncated {
        telemetry::warning(format_args!("command line longer than {MAX_CMDLINE} bytes was cut"));
    }
    cmd
}

/// The boot's own command-line keys.
struct Settings {
    heap: u64,
    start: StartOptions,
    spin_us: u64,
    park: ParkMethod,
    selftest: Option<&'static SelfTest>,
}

impl Settings {
    fn parse(cmd: &Cmdline) -> Result<Settings, BootError> {
        let start = StartOptions {
            timeout_ms: cmd.get(&keys::AP_TIMEOUT_MS),
            max_cpus: cmd.get(&keys::MAX_CPUS).map_or(crate::MAX_CPUS, |n| n.max(1) as usize),
            dead_apic_id: cmd.get(&keys::TEST_DEAD_CPU).map(|id| id as u32),
        };
        let park = match cmd.get(&keys::PARK) {
            "mwait" => ParkMethod::Mwait,
            _ => ParkMethod::Hlt,
        };
        // The key's choices are the self-tests' names (a unit test keeps them equal).
        let selftest = match cmd.get(&keys::SELFTEST) {
            None => None,
            Some(name) => Some(selftest::find(name).ok_or_else(|| err(format_args!("unknown selftest '{name}'; valid selftests: {}", selftest::NAMES)))?),
        };
        Ok(Settings { heap: cmd.get(&keys::HEAP), start, spin_us: cmd.get(&keys::SPIN_US), park, selftest })
    }
}

/// Frames, the identity map and the heap.
fn set_up_memory(info: &BootInfo, heap: u64) -> Result<(), BootError> {
    if info.memory_map().is_empty() || info.regions_dropped > 0 {
        telemetry::warning(format_args!("memory map has {} entries ({} dropped)", info.memory_map().len(), info.regions_dropped));
    }
    mem::init(info, heap).map_err(|e| err(format_args!("memory setup failed: {e}")))
}

/// The framebuffer console (`console=both|fb`; `serial` leaves the
/// framebuffer alone). Without a usable framebuffer the text stays on serial.
fn start_screen(info: &BootInfo, console: &str) {
    if console == "serial" {
        return;
    }
    match screen::init(info) {
        Ok(Some((cols, rows))) => {
            screen::write_fmt(format_args!("AXIOM kernel {} booting\n", env!("CARGO_PKG_VERSION")), Style::Text);
            println!("screen: {cols}x{rows} characters on the framebuffer");
            console::set_serial_text(console == "both");
        }
        Ok(None) if console == "fb" => {
            telemetry::warning(format_args!("console=fb: the boot loader gave no framebuffer (boot through GRUB: cargo axiom iso); text stays on serial"));
        }
        Ok(None) => {}
        Err(e) => telemetry::warning(format_args!("screen: {e}; text stays on serial")),
    }
}

fn warn_about_acpi(platform: &Platform) {
    match &platform.madt {
        Ok(madt) if madt.cpus_over_limit > 0 => {
            telemetry::warning(format_args!("{} CPUs beyond the kernel's limit of {} are ignored", madt.cpus_over_limit, crate::MAX_CPUS));
        }
        Ok(_) => {}
        Err(e @ TableError::NoRsdp) => telemetry::warning(format_args!("{e}: no MADT, running on the BSP alone")),
        Err(e) => telemetry::warning(format_args!("{e}: running on the BSP alone")),
    }
}

/// This CPU's LAPIC; the BSP goes online.
fn bring_up_this_cpu() -> Result<u32, BootError> {
    let apic_id = apic::init_this_cpu().map_err(|e| err(format_args!("LAPIC setup failed: {e}")))?;
    hwcpu::mark_online();
    Ok(apic_id)
}

/// Barrier spin and park method for every launch.
fn configure_launches(s: &Settings) -> Result<CpuFeatures, BootError> {
    let features = CpuFeatures::detect();
    if s.park == ParkMethod::Mwait && !features.monitor {
        return Err(err(format_args!("park=mwait: this CPU has no MONITOR/MWAIT")));
    }
    launch::configure(LaunchConfig { spin_cycles: time::us_to_cycles(s.spin_us), park: s.park });
    Ok(features)
}

fn start_aps(platform: &Platform, bsp_apic: u32, s: &Settings) -> StartReport {
    let Ok(madt) = &platform.madt else {
        return StartReport { found: 1, disabled: 0, unanswered: Vec::new(), skipped: 0 };
    };
    if !madt.enabled_cpus().any(|c| c.apic_id == bsp_apic) {
        telemetry::warning(format_args!("the BSP (APIC id {bsp_apic}) is not listed in the MADT"));
    }
    startup::start_aps(madt, bsp_apic, s.start)
}

/// What the run does after bring-up.
enum Mode {
    SelfTest(&'static SelfTest),
    Infer(InferArgs),
    /// No mode asked for: the boot itself is the check.
    BootCheck,
}

impl Mode {
    fn choose(cmd: &Cmdline, selftest: Option<&'static SelfTest>) -> Result<Mode, BootError> {
        if let Some(t) = selftest {
            return Ok(Mode::SelfTest(t));
        }
        match InferArgs::parse(cmd, smp::online_count()) {
            Ok(Some(args)) => Ok(Mode::Infer(args)),
            Ok(None) => Ok(Mode::BootCheck),
            Err(msg) => Err(err(format_args!("{msg}"))),
        }
    }

    /// The last CPU streams weights instead of computing.
    fn has_io_core(&self) -> bool {
        matches!(self, Mode::Infer(args) if args.io_core)
    }
}

fn run_mode(mode: Mode, ctx: &Context) -> Result<(), BootError> {
    let outcome: Result<(), String> = match mode {
        Mode::SelfTest(t) => {
            println!("running selftest '{}': {}", t.name, t.about);
            (t.run)(ctx).map_err(|msg| alloc::format!("selftest {} failed: {msg}", t.name))
        }
        Mode::Infer(args) => infer::run(ctx, args),
        Mode::BootCheck => {
            println!("no mode requested (prompt=..., interactive=1 or selftest=...): boot check only");
            Ok(())
        }
    };
    outcome.map_err(|msg| err(format_args!("{msg}")))
}

fn report_boot(info: &BootInfo, platform: &Platform, cpus: &StartReport, tsc_source: time::Source, features: &CpuFeatures) {
    let stats = mem::stats(info);
    let unanswered: Vec<Unanswered> = cpus.unanswered.iter().map(|u| Unanswered { apic_id: u.apic_id as u64, stage: u.progress.name().into() }).collect();
    telemetry::emit(&events::Boot {
        cpus_found: cpus.found as u64,
        cpus_online: smp::online_count() as u64,
        cpus_disabled: cpus.disabled as u64,
        cpus_unanswered: unanswered.len() as u64,
        unanswered: (!unanswered.is_empty()).then(|| unanswered.as_slice().into()),
        apic: apic::mode().name().into(),
        tsc_mhz: time::mhz(),
        tsc_source: tsc_source.name().into(),
        tsc_invariant: features.invariant_tsc,
        boot: info.protocol.name().into(),
        acpi: platform.madt.is_ok(),
        rsdp: platform.rsdp.as_ref().map(|r| r.source.name().into()),
        mem_usable_mib: stats.usable_bytes >> 20,
        mem_free_mib: stats.free_bytes >> 20,
        heap_mib: stats.heap_bytes >> 20,
        largest_free_mib: mem::largest_free() >> 20,
        avx: features.avx,
        avx2: features.avx2,
        fma: features.fma,
        avx512f: features.avx512f,
        xcr0: Hex(features.xcr0),
        framebuffer: info.framebuffer.as_ref().map(|fb| Framebuffer { width: fb.width as u64, height: fb.height as u64, bpp: fb.bpp as u64 }),
        cmdline: info.cmdline().into(),
    });
}

/// One `@cpu` per online CPU, with its role.
fn report_cpus() {
    for c in hwcpu::online() {
        telemetry::emit(&events::Cpu { id: c.index() as u64, apic_id: c.apic_id() as u64, role: smp::role(c.index()).name().into() });
    }
}
