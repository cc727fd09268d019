//! The Local APIC, one interface over both modes: x2APIC (MSRs) when CPUID
//! has it, xAPIC (uncached MMIO through the drivers' volatile register type)
//! otherwise. Register offsets are the xAPIC ones; [`icr`] maps them to
//! x2APIC MSRs and encodes the interrupt command register for both modes.
//!
//! Every CPU enables its own LAPIC with the timer stopped and masked and
//! LINT0/LINT1 masked: no time slicing anywhere. The enabling itself (the
//! x2APIC mode bit, the spurious vector and software enable, the LVT timer
//! and error vectors, the timer's mode, divider and initial count, the
//! timer mask) is the `x2apic` crate's `LocalApic::enable`. We keep our own
//! register access for what that crate gets wrong or does not offer:
//! - its `enable` writes 0 to LVT LINT0/LINT1, which *unmasks* both pins
//!   (fixed delivery, vector 0), and it has no call to mask them: we mask
//!   them right after;
//! - its IPIs put an xAPIC destination in ICR bits 32-63 instead of 56-63,
//!   and its `id()` returns the raw register (the xAPIC id is bits 24-31):
//!   every IPI goes through [`icr`]'s encoding, and the id through
//!   [`icr::apic_id_from_register`] (both host-tested);
//! - EOI is written by the wake-up stub in `isr.s` (no Rust runs there);
//! - it chooses x2APIC by its own CPUID read: we check that the mode it
//!   enabled is the one the kernel's CPUID facts chose.
//!
//! The kernel sends wake-up IPIs ([`send_wake`]); INIT and start-up IPIs
//! are reserved to [`crate::boot::ap`], which aims them at a patched
//! trampoline.

pub mod icr;

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use axiom_drivers::hw::{MmioRegion, Registers};
use spin::Once;
use x2apic::lapic::{LocalApicBuilder, TimerDivide, TimerMode};
use x86_64::registers::model_specific::Msr;

pub use icr::ApicMode;
use icr::{Delivery, Destination};

use crate::cpu::idt::{APIC_ERROR_VECTOR, SPURIOUS_VECTOR, TIMER_VECTOR_UNUSED, WAKE_VECTOR};
use crate::cpu::{facts, percpu};
use crate::mem;

/// Read by the wake-up stub in `isr.s` to pick the EOI method.
#[allow(non_upper_case_globals)]
#[cfg_attr(feature = "runtime", no_mangle)]
static axiom_lapic_is_x2apic: AtomicU8 = AtomicU8::new(0);
/// xAPIC EOI register address (`isr.s`).
#[allow(non_upper_case_globals)]
#[cfg_attr(feature = "runtime", no_mangle)]
static axiom_lapic_eoi_address: AtomicU64 = AtomicU64::new(0);

static READY: AtomicBool = AtomicBool::new(false);
static XAPIC: Once<MmioRegion> = Once::new();

const IA32_APIC_BASE: u32 = 0x1B;
const BASE_ENABLE: u64 = 1 << 11;
const BASE_X2APIC: u64 = 1 << 10;
const BASE_ADDRESS_MASK: u64 = 0x000F_FFFF_FFFF_F000;

const REG_ID: u32 = 0x20;
const REG_EOI: u32 = 0xB0;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_LINT0: u32 = 0x350;
const REG_LVT_LINT1: u32 = 0x360;

const LVT_MASKED: u32 = 1 << 16;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;

/// The mode this machine's LAPICs run in: x2APIC exactly when CPUID.1:ECX
/// has x2APIC.
pub fn mode() -> ApicMode {
    if READY.load(Ordering::Acquire) {
        return if axiom_lapic_is_x2apic.load(Ordering::Relaxed) != 0 { ApicMode::X2Apic } else { ApicMode::XApic };
    }
    if facts::get().x2apic {
        ApicMode::X2Apic
    } else {
        ApicMode::XApic
    }
}

/// The boot CPU's LAPIC is up (IPIs can be sent).
pub fn is_ready() -> bool {
    READY.load(Ordering::Acquire)
}

fn read_msr(msr: u32) -> u64 {
    // SAFETY: only LAPIC MSRs (x2APIC registers, IA32_APIC_BASE) are read
    // here, in the mode that defines them; reads have no side effects.
    unsafe { Msr::new(msr).read() }
}

fn write_msr(msr: u32, value: u64) {
    // SAFETY: only this module's LAPIC registers are written, with values
    // that keep interrupts routed to the stubs in `isr.s` (masked LVTs,
    // the spurious vector, IPIs to other CPUs' wake or NMI vectors).
    unsafe { Msr::new(msr).write(value) }
}

fn read(reg: u32) -> u32 {
    match XAPIC.get() {
        Some(regs) if mode() == ApicMode::XApic => regs.read32(reg as usize),
        _ => read_msr(icr::x2apic_msr(reg)) as u32,
    }
}

fn write(reg: u32, value: u32) {
    match XAPIC.get() {
        Some(regs) if mode() == ApicMode::XApic => regs.write32(reg as usize, value),
        _ => write_msr(icr::x2apic_msr(reg), value as u64),
    }
}

/// Why a LAPIC could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LapicError {
    /// The xAPIC register page could not be mapped.
    Unmapped { base: u64 },
    /// The `x2apic` crate refused its configuration.
    Builder(&'static str),
    /// The `x2apic` crate enabled another mode than the kernel chose.
    ModeMismatch { chosen: ApicMode },
}

impl core::fmt::Display for LapicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LapicError::Unmapped { base } => write!(f, "cannot map the xAPIC registers at {base:#x}"),
            LapicError::Builder(why) => write!(f, "LAPIC configuration refused: {why}"),
            LapicError::ModeMismatch { chosen } => write!(f, "the LAPIC did not come up in {} mode", chosen.name()),
        }
    }
}

/// Enable this CPU's LAPIC (timer stopped and masked, LINT0/1 masked),
/// record its APIC id in the per-CPU block and return it.
pub fn init_this_cpu() -> Result<u32, LapicError> {
    let mode = mode();
    let base = read_msr(IA32_APIC_BASE);
    // The crate sets only the x2APIC bit, which is invalid on a globally
    // disabled APIC: enable it first.
    if base & BASE_ENABLE == 0 {
        write_msr(IA32_APIC_BASE, base | BASE_ENABLE);
    }
    let mut builder = LocalApicBuilder::new();
    // The timer stays stopped (one-shot, initial count 0) and masked: no
    // time slicing. The error LVT gets its vector, its mask as firmware left it.
    builder
        .timer_vector(TIMER_VECTOR_UNUSED as usize)
        .error_vector(APIC_ERROR_VECTOR as usize)
        .spurious_vector(SPURIOUS_VECTOR as usize)
        .timer_mode(TimerMode::OneShot)
        .timer_divide(TimerDivide::Div1)
        .timer_initial(0);
    if mode == ApicMode::XApic {
        let phys = base & BASE_ADDRESS_MASK;
        let regs = XAPIC.try_call_once(|| mem::paging::map_lapic(phys).map_err(|_| LapicError::Unmapped { base: phys }))?;
        builder.set_xapic_base(regs.base_address() as u64);
        axiom_lapic_eoi_address.store(regs.base_address() as u64 + REG_EOI as u64, Ordering::Relaxed);
    }
    let mut lapic = builder.build().map_err(LapicError::Builder)?;
    // SAFETY: `enable` and `disable_timer` program only this CPU's LAPIC:
    // the x2APIC bit of IA32_APIC_BASE (set from an enabled APIC, above),
    // the LVT timer and error vectors and the spurious vector (the IDT's
    // stubs), the timer's mode, divider and a zero initial count (stopped),
    // LINT0/LINT1 and the software enable. Interrupts are masked on this CPU
    // while it runs. In xAPIC mode the registers it writes through raw
    // pointers are the page mapped uncached above, which nothing else owns.
    unsafe {
        lapic.enable();
        lapic.disable_timer();
    }
    let x2apic_on = read_msr(IA32_APIC_BASE) & BASE_X2APIC != 0;
    if x2apic_on != (mode == ApicMode::X2Apic) {
        return Err(LapicError::ModeMismatch { chosen: mode });
    }
    if mode == ApicMode::X2Apic {
        axiom_lapic_is_x2apic.store(1, Ordering::Relaxed);
    }
    // `enable` left LINT0/LINT1 unmasked (see the module docs).
    write(REG_LVT_LINT0, LVT_MASKED);
    write(REG_LVT_LINT1, LVT_MASKED);
    let id = icr::apic_id_from_register(mode, read(REG_ID));
    if let Some(me) = percpu::current() {
        me.block().set_apic_id(id);
    }
    READY.store(true, Ordering::Release);
    Ok(id)
}

/// In xAPIC mode, wait (bounded) until the previous IPI left the ICR.
fn wait_icr_idle() {
    if mode() == ApicMode::XApic {
        for _ in 0..1_000_000 {
            if read(REG_ICR_LOW) & ICR_DELIVERY_PENDING == 0 {
                return;
            }
            core::hint::spin_loop();
        }
    }
}

/// Write one IPI to this CPU's ICR.
fn send(icr_value: u64) {
    wait_icr_idle();
    match mode() {
        ApicMode::X2Apic => write_msr(icr::x2apic_msr(REG_ICR_LOW), icr_value),
        ApicMode::XApic => {
            let (high, low) = icr::xapic_register_writes(icr_value);
            write(REG_ICR_HIGH, high);
            write(REG_ICR_LOW, low);
        }
    }
}

fn send_to(apic_id: u32, vector: u8, delivery: Delivery) {
    let value = icr::encode(mode(), vector, delivery, Destination::Apic(apic_id)).unwrap_or_else(|e| panic!("{e}"));
    send(value);
}

/// Wake the CPU with `apic_id` from `hlt`/`mwait` (its handler only
/// acknowledges the interrupt).
pub fn send_wake(apic_id: u32) {
    send_to(apic_id, WAKE_VECTOR, Delivery::Fixed);
}

/// INIT to `apic_id` (AP start-up, `boot::ap` only).
pub(crate) fn send_init(apic_id: u32) {
    send_to(apic_id, 0, Delivery::Init);
}

/// Start-up IPI to `apic_id` with `vector` (AP start-up, `boot::ap` only).
pub(crate) fn send_startup(apic_id: u32, vector: u8) {
    send_to(apic_id, vector, Delivery::StartUp);
}

/// NMI every other CPU (the stop signal on failure).
pub(crate) fn nmi_all_others() {
    let value = icr::encode(mode(), 0, Delivery::Nmi, Destination::AllExcludingSelf).expect("a shorthand always encodes");
    send(value);
}
