//! AP start-up sequencing: for each enabled MADT processor (one at a time,
//! since all share the trampoline page), the hardware layer prepares the
//! CPU and the trampoline ([`ApStart`]); then INIT, 10 ms, SIPI, 200 µs, a
//! second SIPI if the AP has not answered, and up to the per-CPU timeout. A
//! CPU that does not answer is reported (with how far the trampoline got),
//! parked with INIT again by the hardware layer, and boot continues without
//! it.

use alloc::vec::Vec;

use axiom_hw::acpi::MadtInfo;
use axiom_hw::boot::ap::{ApError, ApStart, Progress};
use axiom_hw::cpu::{percpu as hwcpu, Cpu};
use axiom_hw::time;

use super::launch;
use crate::telemetry;

/// A CPU that did not come up.
#[derive(Clone, Copy, Debug)]
pub struct Unanswered {
    pub apic_id: u32,
    pub progress: Progress,
}

/// Outcome of AP start-up.
pub struct StartReport {
    /// Enabled processors in the MADT (the BSP included).
    pub found: usize,
    /// Present but disabled or only online-capable.
    pub disabled: usize,
    pub unanswered: Vec<Unanswered>,
    /// Enabled CPUs not started because of `max_cpus` or xAPIC's 8-bit ids.
    pub skipped: usize,
}

/// How to start the APs (from the command line).
#[derive(Clone, Copy, Debug)]
pub struct StartOptions {
    /// Per-CPU wait for the AP to come online.
    pub timeout_ms: u64,
    /// At most this many CPUs online in all.
    pub max_cpus: usize,
    /// Testing: never send SIPI to this APIC id (exercises the timeout path).
    pub dead_apic_id: Option<u32>,
}

fn wait_online(ap: &ApStart, us: u64) -> bool {
    let end = time::deadline_us(us);
    while !time::passed(end) {
        if ap.is_online() {
            return true;
        }
        core::hint::spin_loop();
    }
    ap.is_online()
}

/// Start every enabled AP in `madt` but the BSP.
pub fn start_aps(madt: &MadtInfo, bsp_apic_id: u32, opts: StartOptions) -> StartReport {
    let mut report = StartReport {
        found: madt.enabled_cpus().count(),
        disabled: madt.cpus().iter().filter(|c| !c.enabled).count(),
        unanswered: Vec::new(),
        skipped: 0,
    };
    for entry in madt.enabled_cpus().filter(|c| c.apic_id != bsp_apic_id) {
        if super::online_count() >= opts.max_cpus {
            report.skipped += 1;
            continue;
        }
        match start_one(entry.apic_id, opts.timeout_ms, opts.dead_apic_id == Some(entry.apic_id)) {
            Ok(_) => {}
            Err(StartError::Prepare(e @ ApError::NeedsX2Apic { .. })) => {
                telemetry::warning(format_args!("{e}; not started"));
                report.skipped += 1;
            }
            Err(StartError::Prepare(e)) => panic!("starting the CPU with APIC id {}: {e}", entry.apic_id),
            Err(StartError::NoAnswer(progress)) => {
                telemetry::warning(format_args!(
                    "CPU with APIC id {} did not answer INIT-SIPI-SIPI within {} ms ({}); continuing without it",
                    entry.apic_id,
                    opts.timeout_ms,
                    progress.name()
                ));
                report.unanswered.push(Unanswered { apic_id: entry.apic_id, progress });
            }
        }
    }
    report
}

enum StartError {
    Prepare(ApError),
    NoAnswer(Progress),
}

/// `simulate_dead`: send INIT but no SIPI (tests the timeout path).
fn start_one(apic_id: u32, timeout_ms: u64, simulate_dead: bool) -> Result<Cpu, StartError> {
    let ap = ApStart::prepare(apic_id, ap_main).map_err(StartError::Prepare)?;
    ap.send_init();
    time::delay_us(10_000);
    let sipi = || {
        if !simulate_dead {
            ap.send_startup();
        }
    };
    sipi();
    if !wait_online(&ap, 200) {
        sipi();
        wait_online(&ap, timeout_ms * 1000);
    }
    ap.finish().map_err(StartError::NoAnswer)
}

/// The kernel's side of an AP, once the hardware layer set it up: read the
/// mailbox, go online, wait for launches.
fn ap_main(me: Cpu) -> ! {
    let seen = launch::first_generation(me.index());
    hwcpu::mark_online();
    launch::idle_loop(me.index(), seen)
}
