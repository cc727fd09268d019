//! The kernel's page tables: an identity map of all RAM (write-back; 2 MiB
//! pages where a whole aligned chunk is RAM, 4 KiB at the edges) and, on
//! request, uncached identity mappings of device memory.
//!
//! Built once on the BSP with the `x86_64` crate's mapper (physical offset 0,
//! since tables are reached through the identity map), then every CPU loads
//! the same root. Mappings are only ever added (not-present -> present), so
//! no TLB shootdown is needed.

use axiom_drivers::hw::MmioRegion;
use core::fmt;
use spin::Mutex;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::{MapToError, TranslateResult};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as F, PhysFrame, Size2MiB, Size4KiB,
    Translate,
};
use x86_64::{PhysAddr, VirtAddr};

use super::frames::Placement;
use super::{alloc_frames, OutOfMemory};
use crate::boot::info::{BootInfo, RegionKind};
use crate::boot::symbols;

const SMALL: u64 = 4096;
const LARGE: u64 = 2 << 20;

static TABLES: Mutex<Option<OffsetPageTable<'static>>> = Mutex::new(None);
static ROOT: Mutex<u64> = Mutex::new(0);

/// Page-table frames: zeroed, below 4 GiB (APs load CR3 in 32-bit mode).
struct TableFrames;

// SAFETY: every frame returned is freshly carved, unused, zeroed RAM.
unsafe impl FrameAllocator<Size4KiB> for TableFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let phys = alloc_frames(SMALL, SMALL, Placement::LowestBelow(1 << 32)).ok()?;
        // SAFETY: the frame is identity-mapped (boot tables map the first
        // 4 GiB) and exclusively ours.
        unsafe { core::ptr::write_bytes(phys as *mut u8, 0, SMALL as usize) };
        Some(PhysFrame::containing_address(PhysAddr::new(phys)))
    }
}

const RAM: F = F::PRESENT.union(F::WRITABLE).union(F::GLOBAL);
const DEVICE: F = F::PRESENT.union(F::WRITABLE).union(F::NO_CACHE).union(F::WRITE_THROUGH);

fn is_ram(kind: RegionKind) -> bool {
    matches!(kind, RegionKind::Usable | RegionKind::AcpiReclaimable | RegionKind::AcpiNvs)
}

fn map_4k(m: &mut OffsetPageTable<'static>, addr: u64, flags: F) -> Result<(), OutOfMemory> {
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(addr));
    let frame = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(addr));
    // SAFETY: identity mapping of a physical page to its own address: no
    // existing virtual mapping changes meaning.
    match unsafe { m.map_to(page, frame, flags, &mut TableFrames) } {
        Ok(flush) => flush.flush(),
        Err(MapToError::PageAlreadyMapped(_)) | Err(MapToError::ParentEntryHugePage) => {}
        Err(MapToError::FrameAllocationFailed) => return Err(OutOfMemory { bytes: SMALL, align: SMALL }),
    }
    Ok(())
}

fn map_2m(m: &mut OffsetPageTable<'static>, addr: u64, flags: F) -> Result<bool, OutOfMemory> {
    let page = Page::<Size2MiB>::containing_address(VirtAddr::new(addr));
    let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(addr));
    // SAFETY: as for `map_4k`.
    match unsafe { m.map_to(page, frame, flags, &mut TableFrames) } {
        Ok(flush) => {
            flush.flush();
            Ok(true)
        }
        Err(MapToError::FrameAllocationFailed) => Err(OutOfMemory { bytes: SMALL, align: SMALL }),
        Err(_) => Ok(false), // part of it is already mapped with small pages
    }
}

/// Identity-map `[start, end)` with `flags`, using 2 MiB pages where possible.
fn map_range(m: &mut OffsetPageTable<'static>, start: u64, end: u64, flags: F) -> Result<(), OutOfMemory> {
    let mut addr = start & !(SMALL - 1);
    while addr < end {
        if addr.is_multiple_of(LARGE) && addr + LARGE <= end && map_2m(m, addr, flags)? {
            addr += LARGE;
        } else {
            map_4k(m, addr, flags)?;
            addr += SMALL;
        }
    }
    Ok(())
}

/// Build the identity map of RAM and switch to it.
pub(super) fn init(info: &BootInfo) -> Result<(), OutOfMemory> {
    let root = TableFrames.allocate_frame().ok_or(OutOfMemory { bytes: SMALL, align: SMALL })?;
    let root_phys = root.start_address().as_u64();
    // SAFETY: `root` is a zeroed frame reachable at its physical address
    // (identity map); it becomes the 'static top-level table.
    let pml4: &'static mut PageTable = unsafe { &mut *(root_phys as *mut PageTable) };
    // SAFETY: physical memory is identity-mapped (offset 0) now and after the switch.
    let mut mapper = unsafe { OffsetPageTable::new(pml4, VirtAddr::new(0)) };

    // The first MiB: BIOS data, EBDA, the AP trampoline, the BIOS ROM area;
    // the legacy VGA window is device memory.
    map_range(&mut mapper, 0, 0xA_0000, RAM)?;
    map_range(&mut mapper, 0xA_0000, 0xC_0000, DEVICE)?;
    map_range(&mut mapper, 0xC_0000, 0x10_0000, RAM)?;
    for r in info.memory_map().iter().filter(|r| is_ram(r.kind)) {
        map_range(&mut mapper, r.start.max(0x10_0000), r.end(), RAM)?;
    }
    // The kernel image, even if a loader's map were to omit it.
    let image = symbols::kernel_image();
    map_range(&mut mapper, image.start, image.end, RAM)?;

    // SAFETY: the new tables identity-map all RAM, including this code, its
    // stack and the tables themselves, so execution continues unchanged.
    unsafe { Cr3::write(root, Cr3Flags::empty()) };
    *TABLES.lock() = Some(mapper);
    *ROOT.lock() = root_phys;
    Ok(())
}

/// Physical address of the top-level table (for APs' CR3).
pub(crate) fn root() -> u64 {
    *ROOT.lock()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The range overlaps RAM (which stays write-back).
    OverlapsRam { addr: u64 },
    /// The range holds registers the hardware layer drives itself (the
    /// Local APIC, whose IPIs could start CPUs anywhere).
    Reserved { addr: u64 },
    OutOfMemory,
    NotInitialised,
    Empty,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::OverlapsRam { addr } => write!(f, "MMIO range overlaps cached RAM at {addr:#x}"),
            MapError::Reserved { addr } => write!(f, "MMIO range at {addr:#x} is the Local APIC's, driven by the hardware layer"),
            MapError::OutOfMemory => write!(f, "out of memory for page tables"),
            MapError::NotInitialised => write!(f, "page tables are not set up yet"),
            MapError::Empty => write!(f, "empty MMIO range"),
        }
    }
}

/// The page of the Local APIC registers (xAPIC MMIO), from IA32_APIC_BASE.
fn lapic_page() -> u64 {
    // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU; reading it has no
    // side effects.
    let base = unsafe { x86_64::registers::model_specific::Msr::new(0x1B).read() };
    base & 0x000F_FFFF_FFFF_F000
}

/// A device's registers at `[phys, phys + len)`, mapped uncached (PCD |
/// PWT) at the same virtual address, as the drivers' volatile register type.
/// Mapping a range again is fine; a range overlapping RAM (which stays
/// write-back) or the Local APIC page is refused.
///
/// The driver that programs the device is trusted to program it correctly
/// (a bus-master device can write anywhere); that is the trust the drivers'
/// register type carries.
pub fn map_mmio(phys: u64, len: usize) -> Result<MmioRegion, MapError> {
    let apic = lapic_page();
    if phys < apic + SMALL && phys.saturating_add(len as u64) > apic {
        return Err(MapError::Reserved { addr: apic });
    }
    device_region(phys, len)
}

/// The xAPIC register page (for `apic` only).
pub(crate) fn map_lapic(phys: u64) -> Result<MmioRegion, MapError> {
    device_region(phys, SMALL as usize)
}

fn device_region(phys: u64, len: usize) -> Result<MmioRegion, MapError> {
    map_device(phys, len, false)?;
    // SAFETY: [phys, phys + len) is now mapped uncached at the same virtual
    // address (and stays mapped: mappings are never removed), it is not RAM
    // (refused above), so no Rust object lives there.
    Ok(unsafe { MmioRegion::new(phys as *mut u8, len) })
}

/// Make firmware tables at `[phys, phys + len)` readable: RAM is already
/// mapped; anything else is mapped uncached.
pub(crate) fn map_firmware(phys: u64, len: usize) -> Result<(), MapError> {
    map_device(phys, len, true)
}

fn map_device(phys: u64, len: usize, allow_ram: bool) -> Result<(), MapError> {
    if len == 0 {
        return Err(MapError::Empty);
    }
    let mut guard = TABLES.lock();
    let m = guard.as_mut().ok_or(MapError::NotInitialised)?;
    let end = phys.checked_add(len as u64).ok_or(MapError::Empty)?;
    let mut addr = phys & !(SMALL - 1);
    while addr < end {
        match m.translate(VirtAddr::new(addr)) {
            TranslateResult::Mapped { flags, .. } => {
                if !allow_ram && !flags.contains(F::NO_CACHE) {
                    return Err(MapError::OverlapsRam { addr });
                }
                addr += SMALL;
            }
            _ => {
                let big = addr.is_multiple_of(LARGE) && addr + LARGE <= end;
                if big && map_2m(m, addr, DEVICE).map_err(|_| MapError::OutOfMemory)? {
                    addr += LARGE;
                } else {
                    map_4k(m, addr, DEVICE).map_err(|_| MapError::OutOfMemory)?;
                    addr += SMALL;
                }
            }
        }
    }
    Ok(())
}

/// The physical address `virt` maps to, if mapped.
pub fn virt_to_phys(virt: u64) -> Option<u64> {
    let guard = TABLES.lock();
    guard.as_ref()?.translate_addr(VirtAddr::new(virt)).map(|p| p.as_u64())
}
