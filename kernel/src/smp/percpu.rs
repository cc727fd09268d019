//! Per-CPU data, reached through the GS base: `gs:0` holds the block's own
//! address and `gs:8` the CPU index (0 = BSP, then APs in start order).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use axiom_kernel::MAX_CPUS;
use x2apic::lapic::LocalApic;

use super::launch::Mailbox;
use super::Role;
use crate::cpu::gdt::CpuTables;
use crate::cpu::instr::{gs_read_u64, wrmsr, IA32_GS_BASE};

/// Per-core counters kept for telemetry.
pub struct CpuStats {
    /// Cycles spent waiting in barriers (all launches).
    pub barrier_wait_cycles: AtomicU64,
    pub barriers: AtomicU64,
    /// Times the core halted while waiting.
    pub parks: AtomicU64,
}

#[repr(C, align(64))]
pub struct PerCpu {
    self_ptr: AtomicU64,
    index: AtomicU64,
    apic_id: AtomicU64,
    boot_ist_base: AtomicU64,
    online: AtomicBool,
    role: AtomicU8,
    /// Set while this CPU reports a fault (a second fault stops at once).
    pub in_fault: AtomicBool,
    pub mailbox: Mailbox,
    pub stats: CpuStats,
    tables: UnsafeCell<CpuTables>,
    lapic: UnsafeCell<Option<LocalApic>>,
}

// SAFETY: `tables` is written only by its own CPU during `install`, before
// the block is used concurrently; `lapic` is only touched by its own CPU
// (`with_lapic`), with interrupts masked (no handler that returns to Rust
// uses it). Everything else is atomic.
unsafe impl Sync for PerCpu {}

impl PerCpu {
    pub const fn new() -> Self {
        PerCpu {
            self_ptr: AtomicU64::new(0),
            index: AtomicU64::new(0),
            apic_id: AtomicU64::new(0),
            boot_ist_base: AtomicU64::new(0),
            online: AtomicBool::new(false),
            role: AtomicU8::new(Role::Compute as u8),
            in_fault: AtomicBool::new(false),
            mailbox: Mailbox::new(),
            stats: CpuStats { barrier_wait_cycles: AtomicU64::new(0), barriers: AtomicU64::new(0), parks: AtomicU64::new(0) },
            tables: UnsafeCell::new(CpuTables::new()),
            lapic: UnsafeCell::new(None),
        }
    }

    pub fn index(&self) -> usize {
        self.index.load(Ordering::Relaxed) as usize
    }

    pub fn apic_id(&self) -> u32 {
        self.apic_id.load(Ordering::Relaxed) as u32
    }

    /// Base of the IST stacks allocated for this CPU at start-up.
    pub fn boot_ist_base(&self) -> u64 {
        self.boot_ist_base.load(Ordering::Acquire)
    }

    pub(super) fn set_boot_ist_base(&self, base: u64) {
        self.boot_ist_base.store(base, Ordering::Release);
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    pub fn role(&self) -> Role {
        Role::from_u8(self.role.load(Ordering::Relaxed))
    }

    pub(super) fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::Relaxed);
    }

    pub(super) fn set_online(&self) {
        self.online.store(true, Ordering::Release);
    }

    pub(super) fn set_apic_id(&self, id: u32) {
        self.apic_id.store(id as u64, Ordering::Relaxed);
    }

    /// The BSP records its APIC id once its LAPIC is up.
    pub fn set_apic_id_public(&self, id: u32) {
        self.set_apic_id(id);
    }

    /// The BSP is online once its LAPIC is up.
    pub fn mark_online(&self) {
        self.set_online();
    }

    /// Run `f` with this CPU's LAPIC driver.
    ///
    /// Panics when called for another CPU's block or before `lapic::init_this_cpu`.
    pub fn with_lapic<R>(&self, f: impl FnOnce(&mut LocalApic) -> R) -> R {
        assert!(core::ptr::eq(self, current()), "a CPU may only use its own LAPIC");
        // SAFETY: see the Sync impl: only this CPU reaches its `lapic`, and
        // no interrupt handler that returns into Rust touches it.
        let slot = unsafe { &mut *self.lapic.get() };
        f(slot.as_mut().expect("LAPIC not initialised on this CPU"))
    }

    pub(super) fn store_lapic(&self, lapic: LocalApic) {
        assert!(core::ptr::eq(self, current()));
        // SAFETY: as in `with_lapic`.
        unsafe { *self.lapic.get() = Some(lapic) };
    }
}

impl Default for PerCpu {
    fn default() -> Self {
        Self::new()
    }
}

static CPUS: [AtomicPtr<PerCpu>; MAX_CPUS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
static REGISTERED: AtomicUsize = AtomicUsize::new(0);
static GS_READY: AtomicBool = AtomicBool::new(false);

/// Record `cpu` under the next free index.
pub fn register(cpu: &'static PerCpu, apic_id: u32) -> usize {
    let index = REGISTERED.fetch_add(1, Ordering::SeqCst);
    assert!(index < MAX_CPUS);
    cpu.index.store(index as u64, Ordering::Relaxed);
    cpu.set_apic_id(apic_id);
    CPUS[index].store(cpu as *const PerCpu as *mut PerCpu, Ordering::Release);
    index
}

/// Forget the most recently registered CPU (it never came up).
pub fn unregister_last(cpu: &'static PerCpu) {
    let index = cpu.index();
    if REGISTERED.compare_exchange(index + 1, index, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
        CPUS[index].store(core::ptr::null_mut(), Ordering::Release);
    }
}

/// Make `cpu` this CPU's per-CPU block: GS base, GDT, TSS (IST stacks at
/// `ist_base`), IDT. Runs first thing on each CPU.
pub fn install(cpu: &'static PerCpu, ist_base: u64) {
    cpu.self_ptr.store(cpu as *const PerCpu as u64, Ordering::Relaxed);
    // SAFETY: GS base = address of a 'static PerCpu whose first two words
    // are the self pointer and the index (repr(C)).
    unsafe { wrmsr(IA32_GS_BASE, cpu as *const PerCpu as u64) };
    GS_READY.store(true, Ordering::Release);
    // SAFETY: see the Sync impl: the tables are written here, once, by
    // their own CPU, and then stay in place for the life of the kernel.
    let tables: &'static mut CpuTables = unsafe { &mut *cpu.tables.get() };
    tables.load(ist_base);
    crate::cpu::idt::load();
}

/// This CPU's index (0 before per-CPU data exists).
pub fn current_index() -> usize {
    if !GS_READY.load(Ordering::Acquire) {
        return 0;
    }
    // SAFETY: once GS_READY is set, every running CPU has installed its block
    // (APs install before anything else in `ap_main`).
    unsafe { gs_read_u64(8) as usize }
}

/// This CPU's block, if installed.
pub fn try_current() -> Option<&'static PerCpu> {
    if !GS_READY.load(Ordering::Acquire) {
        return None;
    }
    // SAFETY: as in `current_index`; gs:0 is the block's own address.
    let ptr = unsafe { gs_read_u64(0) } as *const PerCpu;
    // SAFETY: the pointer was stored from a &'static PerCpu.
    unsafe { ptr.as_ref() }
}

pub fn current() -> &'static PerCpu {
    try_current().expect("per-CPU data not installed")
}

/// The CPU with `index`, if registered.
pub fn cpu(index: usize) -> Option<&'static PerCpu> {
    let ptr = CPUS.get(index)?.load(Ordering::Acquire);
    // SAFETY: non-null entries are &'static PerCpu (leaked or static).
    unsafe { ptr.as_ref() }
}

pub fn registered() -> usize {
    REGISTERED.load(Ordering::SeqCst)
}
