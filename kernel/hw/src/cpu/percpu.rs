//! The CPU registry and each CPU's hardware block, reached through the GS
//! base: `gs:0` holds the block's own address and `gs:8` the CPU index
//! (0 = the boot CPU, then APs in start order). A block holds only what the
//! hardware needs: the index and APIC id, the descriptor tables, the IST
//! stack base and the online and in-fault flags. Kernel-level per-CPU state
//! (launch mailboxes, statistics, roles) lives above, indexed by [`Cpu::index`].

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use x86_64::registers::model_specific::GsBase;
use x86_64::VirtAddr;

use super::gdt::CpuTables;
use crate::MAX_CPUS;

#[repr(C, align(64))]
pub(crate) struct CpuBlock {
    /// `gs:0`: this block's address.
    self_ptr: AtomicU64,
    /// `gs:8`: the CPU index.
    index: AtomicU64,
    apic_id: AtomicU32,
    /// Base of the IST stacks (`gdt::IST_TOTAL` bytes).
    ist_base: AtomicU64,
    online: AtomicBool,
    installed: AtomicBool,
    /// Set while this CPU reports a fault (a second fault stops at once).
    in_fault: AtomicBool,
    tables: CpuTables,
}

impl CpuBlock {
    pub(crate) const fn new() -> Self {
        CpuBlock {
            self_ptr: AtomicU64::new(0),
            index: AtomicU64::new(0),
            apic_id: AtomicU32::new(0),
            ist_base: AtomicU64::new(0),
            online: AtomicBool::new(false),
            installed: AtomicBool::new(false),
            in_fault: AtomicBool::new(false),
            tables: CpuTables::new(),
        }
    }

    pub(crate) fn set_ist_base(&self, base: u64) {
        self.ist_base.store(base, Ordering::Release);
    }

    pub(crate) fn ist_base(&self) -> u64 {
        self.ist_base.load(Ordering::Acquire)
    }

    pub(crate) fn set_apic_id(&self, id: u32) {
        self.apic_id.store(id, Ordering::Relaxed);
    }
}

/// A registered CPU: a read-only view of its block.
#[derive(Clone, Copy)]
pub struct Cpu(&'static CpuBlock);

impl Cpu {
    /// Index in start order (0 = the boot CPU).
    pub fn index(self) -> usize {
        self.0.index.load(Ordering::Relaxed) as usize
    }

    pub fn apic_id(self) -> u32 {
        self.0.apic_id.load(Ordering::Relaxed)
    }

    /// The CPU finished start-up and its kernel code runs (see [`mark_online`]).
    pub fn is_online(self) -> bool {
        self.0.online.load(Ordering::Acquire)
    }

    pub(crate) fn of(block: &'static CpuBlock) -> Cpu {
        Cpu(block)
    }

    pub(crate) fn block(self) -> &'static CpuBlock {
        self.0
    }
}

impl core::fmt::Debug for Cpu {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Cpu({}, apic {})", self.index(), self.apic_id())
    }
}

static CPUS: [AtomicPtr<CpuBlock>; MAX_CPUS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
static REGISTERED: AtomicUsize = AtomicUsize::new(0);
/// Set once the boot CPU's GS base points at its block.
static GS_READY: AtomicBool = AtomicBool::new(false);

/// Record `block` under the next free index.
pub(crate) fn register(block: &'static CpuBlock, apic_id: u32) -> usize {
    let index = REGISTERED.fetch_add(1, Ordering::SeqCst);
    assert!(index < MAX_CPUS, "more than {MAX_CPUS} CPUs registered");
    block.index.store(index as u64, Ordering::Relaxed);
    block.set_apic_id(apic_id);
    CPUS[index].store(block as *const CpuBlock as *mut CpuBlock, Ordering::Release);
    index
}

/// Forget the most recently registered CPU (it never came up).
pub(crate) fn unregister_last(block: &'static CpuBlock) {
    let index = block.index.load(Ordering::Relaxed) as usize;
    if REGISTERED.compare_exchange(index + 1, index, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
        CPUS[index].store(core::ptr::null_mut(), Ordering::Release);
    }
}

/// Make `block` this CPU's per-CPU block: GS base, GDT, TSS (IST stacks at
/// the block's IST base), IDT. Runs first thing on each CPU, once per block:
/// a second install of the same block is refused (its TSS would be loaded
/// twice).
pub(crate) fn install(block: &'static CpuBlock) {
    assert!(!block.installed.swap(true, Ordering::SeqCst), "per-CPU block installed twice");
    block.self_ptr.store(block as *const CpuBlock as u64, Ordering::Relaxed);
    GsBase::write(VirtAddr::new(block as *const CpuBlock as u64));
    GS_READY.store(true, Ordering::Release);
    block.tables.load(block.ist_base());
    super::idt::load();
}

/// This CPU's index (0 before per-CPU blocks exist).
#[inline]
pub fn current_index() -> usize {
    if !GS_READY.load(Ordering::Acquire) {
        return 0;
    }
    // SAFETY: once GS_READY is set, every running CPU has installed its block
    // (APs install before any other Rust code in their entry), and `gs:8` is
    // the block's index word (repr(C)).
    unsafe { super::gs_read_u64(8) as usize }
}

/// This CPU, if its block is installed.
pub fn current() -> Option<Cpu> {
    if !GS_READY.load(Ordering::Acquire) {
        return None;
    }
    // SAFETY: as in `current_index`; `gs:0` is the block's own address.
    let ptr = unsafe { super::gs_read_u64(0) } as *const CpuBlock;
    // SAFETY: the pointer was stored from a `&'static CpuBlock` in `install`.
    unsafe { ptr.as_ref() }.map(Cpu)
}

/// The CPU with `index`, if registered.
pub fn get(index: usize) -> Option<Cpu> {
    let ptr = CPUS.get(index)?.load(Ordering::Acquire);
    // SAFETY: non-null entries are `&'static CpuBlock`s (static or leaked),
    // stored in `register`.
    unsafe { ptr.as_ref() }.map(Cpu)
}

/// Number of registered CPUs (indices `0..registered()`).
pub fn registered() -> usize {
    REGISTERED.load(Ordering::SeqCst)
}

/// Online CPUs, by index.
pub fn online() -> impl Iterator<Item = Cpu> {
    (0..registered()).filter_map(get).filter(|c| c.is_online())
}

/// This CPU is up and its kernel code runs: launches may target it, and a
/// stop signal waits for it. The AP start-up sequence waits for this mark.
pub fn mark_online() {
    let me = current().expect("mark_online before the per-CPU block is installed");
    me.0.online.store(true, Ordering::Release);
}

/// Enter fault reporting on this CPU; true if it was already reporting one.
pub(crate) fn enter_fault() -> bool {
    match current() {
        Some(me) => me.0.in_fault.swap(true, Ordering::SeqCst),
        None => false,
    }
}
