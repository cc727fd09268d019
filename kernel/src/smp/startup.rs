//! AP start-up: for each enabled MADT processor, copy and patch the
//! `ap-trampoline` image at 0x8000, send INIT, wait 10 ms, send SIPI, wait
//! 200 us, send a second SIPI if the AP has not answered, then wait up to the
//! per-CPU timeout. A CPU that does not answer is reported (with how far the
//! trampoline got), sent INIT again so it cannot wake later on a stale
//! patch, and boot continues without it. APs are started one at a time, so a
//! single trampoline page suffices.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use ap_trampoline::{offsets, write_image, Patch, Progress, LOAD_ADDRESS, SIPI_VECTOR};
use axiom_kernel::icr::ApicMode;
use axiom_kernel::madt::MadtInfo;
use axiom_kernel::physmem::Placement;

use super::percpu::{self, PerCpu};
use super::{lapic, launch};
use crate::cpu::gdt::IST_TOTAL;
use crate::mem::{self, paging};
use crate::{telemetry, tsc};

/// Kernel stack of each AP.
pub const AP_STACK_BYTES: u64 = 512 << 10;

extern "C" {
    /// `boot/entry.s`: enables SIMD state, then calls `ap_main(index)`.
    fn axiom_ap_start64();
}

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

fn trampoline_page() -> &'static mut [u8] {
    // SAFETY: the page at LOAD_ADDRESS lies in the low 1 MiB, which the frame
    // allocator never hands out and the identity map covers; only this
    // (sequential, BSP-only) code writes it.
    unsafe { core::slice::from_raw_parts_mut(LOAD_ADDRESS as *mut u8, 4096) }
}

fn progress() -> Progress {
    // SAFETY: as in `trampoline_page`; the AP writes this byte concurrently,
    // hence the volatile read.
    let b = unsafe { core::ptr::read_volatile((LOAD_ADDRESS as usize + offsets::PROGRESS) as *const u8) };
    Progress::from_byte(b)
}

fn wait_online(cpu: &PerCpu, us: u64) -> bool {
    let end = tsc::deadline_us(us);
    while !tsc::passed(end) {
        if cpu.is_online() {
            return true;
        }
        core::hint::spin_loop();
    }
    cpu.is_online()
}

/// Start every enabled AP in `madt` (at most `max_cpus` CPUs in all).
pub fn start_aps(madt: &MadtInfo, bsp_apic_id: u32, timeout_ms: u64, max_cpus: usize, dead: Option<u32>) -> StartReport {
    let mode = lapic::mode();
    let mut report = StartReport {
        found: madt.enabled_cpus().count(),
        disabled: madt.cpus().iter().filter(|c| !c.enabled).count(),
        unanswered: Vec::new(),
        skipped: 0,
    };
    for entry in madt.enabled_cpus().filter(|c| c.apic_id != bsp_apic_id) {
        if super::online_count() >= max_cpus {
            report.skipped += 1;
            continue;
        }
        if mode == ApicMode::XApic && entry.apic_id > 0xFF {
            telemetry::warning(format_args!("CPU with APIC id {} needs x2APIC mode; not started", entry.apic_id));
            report.skipped += 1;
            continue;
        }
        match start_one(entry.apic_id, timeout_ms, dead == Some(entry.apic_id)) {
            Ok(()) => {}
            Err(progress) => {
                telemetry::warning(format_args!(
                    "CPU with APIC id {} did not answer INIT-SIPI-SIPI within {} ms ({}); continuing without it",
                    entry.apic_id,
                    timeout_ms,
                    progress.name()
                ));
                report.unanswered.push(Unanswered { apic_id: entry.apic_id, progress });
            }
        }
    }
    report
}

/// `simulate_dead`: send INIT but no SIPI (tests the timeout path).
fn start_one(apic_id: u32, timeout_ms: u64, simulate_dead: bool) -> Result<(), Progress> {
    let cpu: &'static PerCpu = Box::leak(Box::new(PerCpu::new()));
    let index = percpu::register(cpu, apic_id);
    let stack = match mem::alloc_frames(AP_STACK_BYTES + IST_TOTAL as u64, 4096, Placement::LowestBelow(u64::MAX)) {
        Ok(s) => s,
        Err(e) => panic!("no memory for CPU {index}'s stacks: {e}"),
    };
    cpu.set_boot_ist_base(stack + AP_STACK_BYTES);
    let patch = Patch {
        cr3: paging::root(),
        stack_top: stack + AP_STACK_BYTES,
        entry: axiom_ap_start64 as *const () as u64,
        cpu_index: index as u32,
    };
    if let Err(e) = write_image(trampoline_page(), &patch) {
        panic!("cannot prepare the AP trampoline: {e}");
    }

    lapic::send_init(apic_id);
    tsc::delay_us(10_000);
    let sipi = |id| {
        if !simulate_dead {
            lapic::send_startup(id, SIPI_VECTOR);
        }
    };
    sipi(apic_id);
    if !wait_online(cpu, 200) {
        sipi(apic_id);
        if !wait_online(cpu, timeout_ms * 1000) {
            let reached = progress();
            // Put it back into wait-for-SIPI so it cannot run later on the
            // next CPU's patch.
            lapic::send_init(apic_id);
            percpu::unregister_last(cpu);
            return Err(reached);
        }
    }
    Ok(())
}

/// Rust entry of an AP (from `axiom_ap_start64`, on its own stack).
#[no_mangle]
pub extern "C" fn ap_main(index: u32) -> ! {
    let cpu = percpu::cpu(index as usize).expect("AP started with an unregistered index");
    percpu::install(cpu, cpu.boot_ist_base());
    match lapic::init_this_cpu() {
        Ok(id) if id == cpu.apic_id() => {}
        Ok(id) => panic!("CPU {index} expected APIC id {}, found {id}", cpu.apic_id()),
        Err(e) => panic!("CPU {index}: {e}"),
    }
    cpu.set_online();
    core::sync::atomic::fence(Ordering::SeqCst);
    launch::idle_loop(cpu)
}
