//! The kernel services the NVMe driver runs on: uncached MMIO mappings,
//! physically contiguous DMA memory, the TSC clock, ACPI's MCFG table and the
//! telemetry writer. The driver sees them through `axiom_drivers::hw` traits.

use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use axiom_drivers::hw::{Clock, Dma, DmaAllocError, DmaRegion};
use axiom_drivers::pci::{parse_mcfg, McfgEntry};
use axiom_kernel::bootinfo::Rsdp;
use axiom_kernel::json::JsonObject;
use core::ptr::NonNull;

use crate::mem;

/// DMA memory from the kernel's contiguous allocator. All RAM is
/// identity-mapped (see `mem`), so a RAM pointer is its own bus address.
#[derive(Clone, Copy, Debug)]
pub struct KernelDma;

impl Dma for KernelDma {
    fn alloc(&self, bytes: usize, align: usize) -> Result<DmaRegion, DmaAllocError> {
        let buf = mem::dma::alloc(bytes, align.max(4096)).map_err(|_| DmaAllocError { bytes, align })?;
        // SAFETY: freshly carved, zeroed, identity-mapped frames that only this
        // region will own (the kernel never frees DMA memory).
        Ok(unsafe { DmaRegion::from_raw(buf.virt, buf.phys, buf.len) })
    }

    fn virt_to_phys(&self, virt: usize) -> Option<u64> {
        // Identity map: no page walk on the read path.
        Some(virt as u64)
    }
}

/// The calibrated TSC.
#[derive(Clone, Copy, Debug)]
pub struct TscClock;

impl Clock for TscClock {
    fn now_ns(&self) -> u64 {
        crate::tsc::now_ns()
    }
}

/// Maps a device's registers uncached; `None` if the range is RAM or the
/// page tables cannot grow.
pub fn map_mmio(phys: u64, len: usize) -> Option<*mut u8> {
    match mem::map_mmio(phys, len) {
        Ok(r) => Some(r.virt),
        Err(e) => {
            crate::println!("nvme: cannot map {phys:#x}+{len:#x} uncached: {e}");
            None
        }
    }
}

/// A zeroed, physically contiguous buffer for reads, owned by the caller for
/// the rest of the kernel's life.
pub fn dma_buffer(bytes: usize) -> Option<&'static mut [u8]> {
    let buf = mem::dma::alloc(bytes, 2 << 20).ok()?;
    // SAFETY: freshly carved frames nobody else references; never freed.
    Some(unsafe { core::slice::from_raw_parts_mut(buf.virt, buf.len) })
}

pub fn emit(name: &str, fill: impl FnOnce(&mut JsonObject)) {
    crate::telemetry::emit(name, fill)
}

/// ACPI tables are read in place through the identity map.
#[derive(Clone)]
struct IdentityAcpi;

impl AcpiHandler for IdentityAcpi {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
        if let Err(e) = mem::paging::map_firmware(phys as u64, size) {
            panic!("cannot map ACPI table at {phys:#x}+{size:#x}: {e}");
        }
        let ptr = NonNull::new(phys as *mut T).expect("ACPI table at physical address 0");
        // SAFETY: [phys, phys+size) is mapped at the same virtual address.
        unsafe { PhysicalMapping::new(phys, ptr, size, size, self.clone()) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// The ACPI RSDP. The kernel's boot path does not keep the one it found
/// (requested in /work/plan/requests.md); until it does, scan the BIOS areas,
/// which finds it on every BIOS boot (QEMU `-kernel`, GRUB on BIOS).
pub fn rsdp() -> Option<Rsdp> {
    axiom_kernel::bootinfo::scan_bios_for_rsdp(&mem::BootPhysMem)
}

/// The ECAM window for PCI segment 0 from ACPI's MCFG, if there is one
/// (QEMU's q35 has it; pc does not).
pub fn mcfg_segment0(rsdp: Option<&Rsdp>) -> Option<McfgEntry> {
    let rsdp = rsdp?;
    // SAFETY: the RSDP was validated at boot; the handler maps what it reads.
    let tables = unsafe {
        match rsdp.xsdt_address {
            Some(x) => AcpiTables::from_rsdt(IdentityAcpi, 2, x as usize),
            None => AcpiTables::from_rsdt(IdentityAcpi, 0, rsdp.rsdt_address as usize),
        }
    }
    .ok()?;
    let mapping = tables.find_table::<acpi::mcfg::Mcfg>().ok()?;
    let phys = mapping.physical_start() as u64;
    // SAFETY: find_table mapped the table's header; its length field says how
    // much follows, which we map before reading it.
    let len = unsafe { core::ptr::read_unaligned((phys + 4) as *const u32) } as usize;
    mem::paging::map_firmware(phys, len).ok()?;
    // SAFETY: [phys, phys+len) is the MCFG table, mapped above and not written
    // by anyone while we parse it.
    let bytes = unsafe { core::slice::from_raw_parts(phys as *const u8, len) };
    match parse_mcfg(bytes) {
        Ok(entries) => entries.into_iter().find(|e| e.segment == 0),
        Err(e) => {
            crate::println!("nvme: ignoring ACPI MCFG: {e}");
            None
        }
    }
}
