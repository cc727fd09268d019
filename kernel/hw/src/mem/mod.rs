//! Physical memory, page tables, the heap, DMA memory and the tensor region.
//!
//! Memory model: every byte of RAM is identity-mapped (virtual == physical),
//! so a pointer is also a DMA address. Device registers are mapped uncached
//! on request ([`map_mmio`]). Memory taken at boot (page tables, stacks, the
//! heap, DMA buffers, the tensor region) is never given back.
//!
//! The API for the kernel and its drivers:
//! - [`map_mmio`]: a device's registers, uncached, as the drivers' volatile
//!   register type.
//! - [`dma::alloc`]: zeroed, physically contiguous memory with its physical
//!   address; [`dma::DeviceDma`] gives the drivers theirs.
//! - [`virt_to_phys`]: physical address of a mapped virtual address.
//! - [`reserve_region`]: one large physically contiguous [`Region`] (the
//!   inference engine's tensor pools), carved into non-overlapping parts;
//!   [`largest_free`] tells how big it can be.
//! - [`slot_ring`]: the weight slots a device fills and the compute cores
//!   read, handed over by per-slot state words.

pub mod dma;
pub mod frames;
mod heap;
pub(crate) mod paging;
pub mod region;
pub mod slot_ring;

use core::fmt;

use spin::Mutex;

use crate::boot::info::{BootInfo, PhysMem, MAX_MODULES};
use crate::boot::symbols;
pub use frames::PhysRange;
use frames::{FreeRanges, Placement, PAGE};

pub use paging::{map_mmio, virt_to_phys, MapError};
pub use region::{CarveError, Region};

/// Physical memory not yet handed out.
static FREE: Mutex<Option<FreeRanges>> = Mutex::new(None);
static HEAP_BYTES: Mutex<u64> = Mutex::new(0);

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

/// Summary figures for `@boot`.
#[derive(Clone, Copy, Debug)]
pub struct MemStats {
    pub usable_bytes: u64,
    pub free_bytes: u64,
    pub heap_bytes: u64,
}

/// Set up frames, the identity map and the heap (`heap_bytes`, at least
/// 1 MiB). Runs once on the boot CPU.
pub fn init(info: &BootInfo, heap_bytes: u64) -> Result<(), OutOfMemory> {
    let mut in_use = [PhysRange::new(0, 0); 2 + MAX_MODULES];
    // Low 1 MiB: BIOS data, the AP trampoline page, option ROMs.
    in_use[0] = PhysRange::new(0, 0x10_0000);
    in_use[1] = symbols::kernel_image();
    for (slot, m) in in_use[2..].iter_mut().zip(info.modules()) {
        *slot = PhysRange::new(m.start, m.end);
    }
    {
        let mut free = FREE.lock();
        assert!(free.is_none(), "mem::init runs once");
        *free = Some(FreeRanges::from_map(info.memory_map(), &in_use));
    }

    paging::init(info)?;

    let heap_bytes = heap_bytes.max(1 << 20);
    let heap = alloc_frames(heap_bytes, 2 << 20, Placement::LowestBelow(u64::MAX))?;
    heap::init(heap, heap_bytes as usize);
    *HEAP_BYTES.lock() = heap_bytes;
    Ok(())
}

/// Carve `bytes` (rounded up to pages) of physical memory, for good.
pub(crate) fn alloc_frames(bytes: u64, align: u64, placement: Placement) -> Result<u64, OutOfMemory> {
    let mut free = FREE.lock();
    let ranges = free.as_mut().ok_or(OutOfMemory { bytes, align })?;
    ranges.alloc(bytes, align.max(PAGE), placement).ok_or(OutOfMemory { bytes, align })
}

/// Reserve one physically contiguous region of `bytes` (rounded up to
/// pages), aligned to `align` (a power of two; 2 MiB is a good choice for
/// tensor pools), from the largest free range. Its contents are not zeroed
/// (zeroing gigabytes at boot is slow under emulation): the parts carved
/// from it are zeroed, or filled by DMA, as they are handed out.
pub fn reserve_region(bytes: u64, align: u64) -> Result<Region, OutOfMemory> {
    let start = alloc_frames(bytes, align, Placement::Largest)?;
    let len = bytes.div_ceil(PAGE) * PAGE;
    // SAFETY: [start, start + len) was just carved from free, identity-mapped
    // RAM and is handed to nobody else, ever.
    Ok(unsafe { Region::new(start, len) })
}

/// The largest contiguous region [`reserve_region`] could return now.
pub fn largest_free() -> u64 {
    FREE.lock().as_ref().and_then(|f| f.largest()).map(|r| r.len()).unwrap_or(0)
}

/// The free physical ranges, largest first (the first is what
/// [`reserve_region`] takes next).
pub fn free_ranges() -> alloc::vec::Vec<PhysRange> {
    let mut v: alloc::vec::Vec<PhysRange> = FREE.lock().as_ref().map(|f| f.ranges().to_vec()).unwrap_or_default();
    v.sort_by_key(|r| core::cmp::Reverse(r.len()));
    v
}

/// What [`check_free_frames`] found.
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameCheck {
    pub frames: u64,
    /// Frames at or above 4 GiB.
    pub frames_above_4g: u64,
    /// One past the highest byte checked.
    pub highest: u64,
    /// The first frame whose words did not read back, if any.
    pub first_bad: Option<u64>,
}

/// Writes a word tagged with its own address at the start and at the end of
/// every free 4 KiB frame, then reads them all back: every usable frame the
/// memory map promised (below and above 4 GiB) is identity-mapped, writable
/// and distinct (no two addresses alias). Holds the allocator lock, so
/// nothing is handed out meanwhile; free frames hold no data, so this
/// destroys nothing.
pub fn check_free_frames() -> FrameCheck {
    let free = FREE.lock();
    let Some(ranges) = free.as_ref() else {
        return FrameCheck::default();
    };
    let tag = |addr: u64| addr ^ 0x5A5A_C3C3_0F0F_9696;
    let words = |r: &PhysRange| (r.start..r.end).step_by(PAGE as usize).flat_map(|f| [f, f + PAGE - 8]);
    for r in ranges.ranges() {
        for addr in words(r) {
            // SAFETY: `addr` lies in a free frame (the allocator lock is held,
            // so no one owns it), identity-mapped RAM, 8-byte aligned.
            unsafe { core::ptr::write_volatile(addr as *mut u64, tag(addr)) };
        }
    }
    let mut out = FrameCheck::default();
    for r in ranges.ranges() {
        for addr in words(r) {
            // SAFETY: as above; written just before.
            let found = unsafe { core::ptr::read_volatile(addr as *const u64) };
            if found != tag(addr) && out.first_bad.is_none() {
                out.first_bad = Some(addr & !(PAGE - 1));
            }
        }
        out.frames += r.len() / PAGE;
        out.frames_above_4g += r.end.saturating_sub(r.start.max(1 << 32)) / PAGE;
        out.highest = out.highest.max(r.end);
    }
    out
}

pub fn stats(info: &BootInfo) -> MemStats {
    MemStats {
        usable_bytes: info.usable_bytes(),
        free_bytes: FREE.lock().as_ref().map(|f| f.total()).unwrap_or(0),
        heap_bytes: *HEAP_BYTES.lock(),
    }
}

/// Identity-mapped physical memory as seen during boot (for `boot::info`
/// and the RSDP scan).
pub(crate) struct BootPhysMem;

impl PhysMem for BootPhysMem {
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
