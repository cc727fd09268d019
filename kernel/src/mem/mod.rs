//! Physical memory, page tables and the heap.
//!
//! Memory model: every byte of RAM is identity-mapped (virtual == physical),
//! so a pointer is also a DMA address. Device registers are mapped uncached
//! on request ([`map_mmio`]). Memory taken at boot (page tables, stacks, the
//! heap, DMA buffers, the tensor region) is never given back.
//!
//! APIs for other parts of the kernel:
//! - [`map_mmio`]: map a device's registers uncached.
//! - [`dma::alloc`]: zeroed, physically contiguous memory with its physical address.
//! - [`virt_to_phys`]: physical address of a mapped virtual address.
//! - [`reserve_region`]: carve one large physically contiguous region (the
//!   inference engine's tensor pools); [`largest_free`] tells how big it can be.

pub mod dma;
mod heap;
pub mod paging;

use axiom_kernel::bootinfo::BootInfo;
use axiom_kernel::physmem::{FreeRanges, PhysRange, Placement, PAGE};
use core::fmt;
use spin::Mutex;

// The API of this module for drivers (NVMe glue) and the inference integration.
#[allow(unused_imports)]
pub use paging::{map_mmio, virt_to_phys, MmioRegion};

/// Physical memory not yet handed out.
static FREE: Mutex<Option<FreeRanges>> = Mutex::new(None);

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// Out of physical memory (or a request that cannot be met).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory {
    pub bytes: u64,
    pub align: u64,
}

impl fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "out of physical memory: no free {} bytes aligned to {:#x}", self.bytes, self.align)
    }
}

/// A physically contiguous region (identity-mapped: `start` is also its address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRegion {
    pub start: u64,
    pub len: u64,
}

impl PhysRegion {
    #[allow(dead_code)] // for the inference integration's tensor pools
    pub fn as_ptr(&self) -> *mut u8 {
        self.start as *mut u8
    }
}

/// The kernel image's physical extent.
pub fn kernel_image() -> PhysRange {
    let start = core::ptr::addr_of!(__kernel_start) as u64;
    let end = core::ptr::addr_of!(__kernel_end) as u64;
    PhysRange::new(start, end)
}

/// Summary figures for `@boot`.
#[derive(Clone, Copy, Debug)]
pub struct MemStats {
    pub usable_bytes: u64,
    pub free_bytes: u64,
    pub heap_bytes: u64,
}

static HEAP_BYTES: Mutex<u64> = Mutex::new(0);

/// Set up frames, the identity map and the heap. Runs once on the BSP.
pub fn init(info: &BootInfo, heap_bytes: u64) -> Result<(), OutOfMemory> {
    let image = kernel_image();
    let mut in_use = [PhysRange::new(0, 0); 2 + axiom_kernel::bootinfo::MAX_MODULES];
    // Low 1 MiB: BIOS data, the AP trampoline page, option ROMs.
    in_use[0] = PhysRange::new(0, 0x10_0000);
    in_use[1] = image;
    for (slot, m) in in_use[2..].iter_mut().zip(info.modules()) {
        *slot = PhysRange::new(m.start, m.end);
    }
    *FREE.lock() = Some(FreeRanges::from_map(info.memory_map(), &in_use));

    paging::init(info)?;

    let heap_bytes = heap_bytes.max(1 << 20);
    let heap = alloc_frames(heap_bytes, 2 << 20, Placement::LowestBelow(u64::MAX))?;
    heap::init(heap, heap_bytes as usize);
    *HEAP_BYTES.lock() = heap_bytes;
    Ok(())
}

/// Carve `bytes` (rounded up to pages) of physical memory.
pub(crate) fn alloc_frames(bytes: u64, align: u64, placement: Placement) -> Result<u64, OutOfMemory> {
    let mut free = FREE.lock();
    let ranges = free.as_mut().expect("mem::init has not run");
    ranges.alloc(bytes, align.max(PAGE), placement).ok_or(OutOfMemory { bytes, align })
}

/// Reserve one physically contiguous region of `bytes`, aligned to `align`
/// (a power of two; 2 MiB is a good choice for tensor pools), from the
/// largest free range. Its contents are not zeroed (zeroing gigabytes at
/// boot is slow under emulation); the caller owns it for the life of the
/// kernel.
pub fn reserve_region(bytes: u64, align: u64) -> Result<PhysRegion, OutOfMemory> {
    let start = alloc_frames(bytes, align, Placement::Largest)?;
    Ok(PhysRegion { start, len: bytes.div_ceil(PAGE) * PAGE })
}

/// The largest contiguous region [`reserve_region`] could return now.
pub fn largest_free() -> u64 {
    FREE.lock().as_ref().and_then(|f| f.largest()).map(|r| r.len()).unwrap_or(0)
}

pub fn stats(info: &BootInfo) -> MemStats {
    MemStats {
        usable_bytes: info.usable_bytes(),
        free_bytes: FREE.lock().as_ref().map(|f| f.total()).unwrap_or(0),
        heap_bytes: *HEAP_BYTES.lock(),
    }
}

/// Identity-mapped physical memory as seen during boot (for `bootinfo`).
pub struct BootPhysMem;

impl axiom_kernel::bootinfo::PhysMem for BootPhysMem {
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
        // The boot page tables map the first 4 GiB; Multiboot structures,
        // the EBDA and the BIOS area all lie there.
        if addr == 0 || addr.checked_add(len as u64)? > 1 << 32 {
            return None;
        }
        // SAFETY: the range is inside the identity-mapped first 4 GiB, and
        // boot structures are not written while this borrow lives.
        Some(unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
    }
}
