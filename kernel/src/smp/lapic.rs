//! The Local APIC through the `x2apic` crate: x2APIC mode when CPUID has it,
//! xAPIC (uncached MMIO) otherwise. The timer is left stopped and masked:
//! no time slicing anywhere. Workarounds for the crate's xAPIC bugs (IPI
//! destination bits, raw `id()`) are in `axiom_kernel::icr`, host-tested.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use axiom_kernel::icr::{self, ApicMode, Delivery, Destination};
use x2apic::lapic::{xapic_base, LocalApicBuilder, TimerMode};

use super::percpu;
use crate::cpu::idt::{APIC_ERROR_VECTOR, SPURIOUS_VECTOR, TIMER_VECTOR_UNUSED, WAKE_VECTOR};
use crate::cpu::instr::{cpuid, wrmsr};
use crate::mem;

/// Read by the wake-up stub in `isr.s` to pick the EOI method.
#[no_mangle]
static axiom_lapic_is_x2apic: AtomicU8 = AtomicU8::new(0);
/// xAPIC EOI register address (`isr.s`).
#[no_mangle]
static axiom_lapic_eoi_address: AtomicU64 = AtomicU64::new(0);

static READY: AtomicBool = AtomicBool::new(false);
static XAPIC_BASE: AtomicU64 = AtomicU64::new(0);

const X2APIC_ICR_MSR: u32 = 0x830;
const X2APIC_LVT_LINT0: u32 = 0x835;
const X2APIC_LVT_LINT1: u32 = 0x836;
const XAPIC_ICR_LOW: u64 = 0x300;
const XAPIC_ICR_HIGH: u64 = 0x310;
const XAPIC_LVT_LINT0: u64 = 0x350;
const XAPIC_LVT_LINT1: u64 = 0x360;
const XAPIC_EOI: u64 = 0xB0;
const LVT_MASKED: u32 = 1 << 16;

/// The mode the crate selects: x2APIC exactly when CPUID.1:ECX.x2APIC is set.
pub fn mode() -> ApicMode {
    if cpuid(1, 0).ecx & (1 << 21) != 0 {
        ApicMode::X2Apic
    } else {
        ApicMode::XApic
    }
}

pub fn is_ready() -> bool {
    READY.load(Ordering::Acquire)
}

fn xapic_write(offset: u64, value: u32) {
    let addr = XAPIC_BASE.load(Ordering::Relaxed) + offset;
    // SAFETY: the xAPIC page was mapped uncached in `init_this_cpu`; writes
    // to LVT/ICR registers have no memory-safety effects.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}

fn xapic_read(offset: u64) -> u32 {
    let addr = XAPIC_BASE.load(Ordering::Relaxed) + offset;
    // SAFETY: as in `xapic_write`.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Enable this CPU's LAPIC (timer stopped and masked, LINT0/1 masked) and
/// return its APIC id.
pub fn init_this_cpu() -> Result<u32, &'static str> {
    let mode = mode();
    let mut builder = LocalApicBuilder::new();
    builder
        .timer_vector(TIMER_VECTOR_UNUSED as usize)
        .error_vector(APIC_ERROR_VECTOR as usize)
        .spurious_vector(SPURIOUS_VECTOR as usize)
        .timer_mode(TimerMode::OneShot)
        .timer_initial(0);
    if mode == ApicMode::XApic {
        // SAFETY: reading IA32_APIC_BASE is side-effect free.
        let base = unsafe { xapic_base() };
        mem::map_mmio(base, 4096).map_err(|_| "cannot map the xAPIC registers")?;
        XAPIC_BASE.store(base, Ordering::Relaxed);
        axiom_lapic_eoi_address.store(base + XAPIC_EOI, Ordering::Relaxed);
        builder.set_xapic_base(base);
    } else {
        axiom_lapic_is_x2apic.store(1, Ordering::Relaxed);
    }
    let mut lapic = builder.build()?;
    // SAFETY: programs this CPU's own LAPIC. `enable` loads the timer with
    // initial count 0 (stopped); it is masked right after, and LINT0/LINT1
    // (which `enable` leaves unmasked with vector 0) are masked too.
    unsafe {
        lapic.enable();
        lapic.disable_timer();
        match mode {
            ApicMode::X2Apic => {
                wrmsr(X2APIC_LVT_LINT0, LVT_MASKED as u64);
                wrmsr(X2APIC_LVT_LINT1, LVT_MASKED as u64);
            }
            ApicMode::XApic => {
                xapic_write(XAPIC_LVT_LINT0, LVT_MASKED);
                xapic_write(XAPIC_LVT_LINT1, LVT_MASKED);
            }
        }
    }
    // SAFETY: reading the ID register has no side effects.
    let id = icr::apic_id_from_register(mode, unsafe { lapic.id() });
    percpu::current().store_lapic(lapic);
    READY.store(true, Ordering::Release);
    Ok(id)
}

/// In xAPIC mode, wait until the previous IPI left the ICR.
fn wait_icr_idle(mode: ApicMode) {
    if mode == ApicMode::XApic {
        for _ in 0..1_000_000 {
            if xapic_read(XAPIC_ICR_LOW) & (1 << 12) == 0 {
                return;
            }
            core::hint::spin_loop();
        }
    }
}

fn send(vector: u8, delivery: Delivery, apic_id: u32) {
    let mode = mode();
    let dest = icr::crate_destination(mode, apic_id).expect("APIC id beyond xAPIC range");
    wait_icr_idle(mode);
    percpu::current().with_lapic(|l| {
        // SAFETY: sends an IPI from this CPU's LAPIC; the destination has
        // been adjusted for the crate's xAPIC encoding.
        unsafe {
            match delivery {
                Delivery::Fixed => l.send_ipi(vector, dest),
                Delivery::Init => l.send_init_ipi(dest),
                Delivery::StartUp => l.send_sipi(vector, dest),
                Delivery::Nmi => l.send_nmi(dest),
            }
        }
    });
}

/// Wake a core parked in `hlt` (barrier or launch mailbox).
pub fn send_wake(apic_id: u32) {
    send(WAKE_VECTOR, Delivery::Fixed, apic_id);
}

pub fn send_init(apic_id: u32) {
    send(0, Delivery::Init, apic_id);
}

pub fn send_startup(apic_id: u32, vector: u8) {
    send(vector, Delivery::StartUp, apic_id);
}

/// NMI every other CPU (the stop signal on failure). Writes the ICR
/// directly, without the crate, because it runs from fault handlers that may
/// have interrupted this CPU's own use of the crate's driver.
pub fn nmi_all_others() {
    let mode = mode();
    let value = icr::encode(mode, 0, Delivery::Nmi, Destination::AllExcludingSelf).expect("shorthand always encodes");
    wait_icr_idle(mode);
    match mode {
        // SAFETY: writing the x2APIC ICR MSR sends the IPI; no memory effects.
        ApicMode::X2Apic => unsafe { wrmsr(X2APIC_ICR_MSR, value) },
        ApicMode::XApic => {
            let (high, low) = icr::xapic_register_writes(value);
            xapic_write(XAPIC_ICR_HIGH, high);
            xapic_write(XAPIC_ICR_LOW, low);
        }
    }
}
