//! Starting an application processor (AP). [`ApStart::prepare`] registers
//! the CPU, gives it stacks and copies and patches the `ap-trampoline` image
//! at its load address; the kernel then sequences INIT, the start-up IPIs
//! and its timeouts with [`ApStart::send_init`] / [`ApStart::send_startup`],
//! and ends with [`ApStart::finish`]: the CPU is online, or it is parked
//! with INIT again (so it cannot wake later on another CPU's patch) and
//! forgotten. Only one `ApStart` exists at a time, because all APs share the
//! one trampoline page; start-up IPIs only ever point at that page, patched
//! for the CPU they go to.
//!
//! The AP runs the trampoline (16 → 32 → 64-bit), `axiom_ap_start64`
//! (`entry.s`: SIMD state) and then `axiom_hw_ap_entry` here: it installs its
//! per-CPU block (GS, GDT, TSS, IDT), enables its LAPIC and calls the
//! kernel's AP function, which marks it online
//! ([`crate::cpu::percpu::mark_online`]) once it is ready for work.

use alloc::boxed::Box;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use ap_trampoline::{offsets, write_image, Patch, LOAD_ADDRESS, SIPI_VECTOR};
pub use ap_trampoline::Progress;

use super::symbols;
use crate::apic::{self, ApicMode};
use crate::cpu::gdt::IST_TOTAL;
use crate::cpu::percpu::{self, Cpu, CpuBlock};
use crate::mem::{self, frames::Placement, paging, OutOfMemory};

/// Kernel stack of each AP.
pub const AP_STACK_BYTES: u64 = 512 << 10;

/// The kernel's code for an AP, called on the AP once its hardware is set
/// up; it marks the CPU online and never returns.
pub type ApMain = fn(Cpu) -> !;

/// Set while an `ApStart` owns the trampoline page.
static TRAMPOLINE_BUSY: AtomicBool = AtomicBool::new(false);
static AP_MAIN: spin::Mutex<Option<ApMain>> = spin::Mutex::new(None);

/// Why an AP cannot be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApError {
    /// Another start-up holds the trampoline page.
    Busy,
    /// xAPIC mode addresses 8-bit APIC ids only.
    NeedsX2Apic { apic_id: u32 },
    /// No memory for the CPU's stacks.
    OutOfMemory(OutOfMemory),
    /// The trampoline image cannot be patched (a build problem).
    Trampoline(ap_trampoline::PatchError),
}

impl fmt::Display for ApError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApError::Busy => write!(f, "another CPU is being started"),
            ApError::NeedsX2Apic { apic_id } => write!(f, "CPU with APIC id {apic_id} needs x2APIC mode"),
            ApError::OutOfMemory(e) => write!(f, "no memory for the CPU's stacks: {e}"),
            ApError::Trampoline(e) => write!(f, "cannot prepare the AP trampoline: {e}"),
        }
    }
}

/// One AP being started (see the module docs).
pub struct ApStart {
    block: &'static CpuBlock,
    apic_id: u32,
    finished: bool,
}

impl ApStart {
    /// Register the CPU with `apic_id`, allocate its stacks and patch the
    /// trampoline for it; `main` runs on it once it is up.
    pub fn prepare(apic_id: u32, main: ApMain) -> Result<ApStart, ApError> {
        if apic::mode() == ApicMode::XApic && apic_id > 0xFF {
            return Err(ApError::NeedsX2Apic { apic_id });
        }
        if TRAMPOLINE_BUSY.swap(true, Ordering::SeqCst) {
            return Err(ApError::Busy);
        }
        let release = |e| {
            TRAMPOLINE_BUSY.store(false, Ordering::SeqCst);
            e
        };
        let stacks = mem::alloc_frames(AP_STACK_BYTES + IST_TOTAL as u64, 4096, Placement::LowestBelow(u64::MAX)).map_err(|e| release(ApError::OutOfMemory(e)))?;
        let block: &'static CpuBlock = Box::leak(Box::new(CpuBlock::new()));
        block.set_ist_base(stacks + AP_STACK_BYTES);
        let index = percpu::register(block, apic_id);
        *AP_MAIN.lock() = Some(main);
        let patch = Patch { cr3: paging::root(), stack_top: stacks + AP_STACK_BYTES, entry: symbols::ap_start64(), cpu_index: index as u32 };
        let start = ApStart { block, apic_id, finished: false };
        // Dropping `start` on error unregisters the CPU and frees the page.
        write_trampoline(&patch).map_err(ApError::Trampoline)?;
        Ok(start)
    }

    /// The CPU index it was registered under.
    pub fn index(&self) -> usize {
        self.cpu().index()
    }

    pub fn apic_id(&self) -> u32 {
        self.apic_id
    }

    fn cpu(&self) -> Cpu {
        Cpu::of(self.block)
    }

    /// Send INIT (the CPU waits for a start-up IPI afterwards).
    pub fn send_init(&self) {
        apic::send_init(self.apic_id);
    }

    /// Send a start-up IPI pointing at the trampoline patched for this CPU.
    pub fn send_startup(&self) {
        apic::send_startup(self.apic_id, SIPI_VECTOR);
    }

    /// The CPU's kernel code marked it online.
    pub fn is_online(&self) -> bool {
        self.cpu().is_online()
    }

    /// How far the CPU got through the trampoline (its progress byte).
    pub fn progress(&self) -> Progress {
        let addr = (LOAD_ADDRESS as usize + offsets::PROGRESS) as *const u8;
        // SAFETY: the trampoline page lies in the low 1 MiB, which the frame
        // allocator never hands out and the identity map covers; the AP
        // writes this byte concurrently, hence a volatile read through a raw
        // pointer (no reference to the page is made).
        Progress::from_byte(unsafe { core::ptr::read_volatile(addr) })
    }

    /// End the start-up: `Ok` with the CPU if it came online; otherwise the
    /// CPU is sent INIT (back to waiting for a start-up IPI), unregistered,
    /// and `Err` says how far it got.
    pub fn finish(mut self) -> Result<Cpu, Progress> {
        self.finished = true;
        let result = if self.is_online() { Ok(self.cpu()) } else { Err(self.abandon()) };
        TRAMPOLINE_BUSY.store(false, Ordering::SeqCst);
        result
    }

    fn abandon(&self) -> Progress {
        let reached = self.progress();
        apic::send_init(self.apic_id);
        percpu::unregister_last(self.block);
        reached
    }
}

impl Drop for ApStart {
    fn drop(&mut self) {
        if !self.finished {
            self.abandon();
            TRAMPOLINE_BUSY.store(false, Ordering::SeqCst);
        }
    }
}

/// Copy and patch the trampoline at its load address. Called only while the
/// caller holds `TRAMPOLINE_BUSY`, so no AP executes the page: the previous
/// AP either came online (it left the trampoline long before) or was sent
/// INIT (it stopped).
fn write_trampoline(patch: &Patch) -> Result<(), ap_trampoline::PatchError> {
    // SAFETY: the page at LOAD_ADDRESS lies in the low 1 MiB, which the frame
    // allocator never hands out and the identity map covers; per the above,
    // no CPU reads or writes it while this exclusive borrow lives.
    let page = unsafe { core::slice::from_raw_parts_mut(LOAD_ADDRESS as *mut u8, 4096) };
    write_image(page, patch)
}

/// Rust entry of an AP (from `axiom_ap_start64`, on its own stack).
#[cfg(feature = "runtime")]
#[no_mangle]
extern "C" fn axiom_hw_ap_entry(index: u32) -> ! {
    let cpu = percpu::get(index as usize).expect("AP started with an unregistered index");
    let block = cpu.block();
    percpu::install(block);
    match apic::init_this_cpu() {
        Ok(id) if id == cpu.apic_id() => {}
        Ok(id) => panic!("CPU {index} expected APIC id {}, found {id}", cpu.apic_id()),
        Err(e) => panic!("CPU {index}: {e}"),
    }
    let main = AP_MAIN.lock().expect("the AP's kernel function is set before its start-up IPI");
    main(cpu)
}
