//! Platform discovery through ACPI: the RSDP (from Multiboot2, else the BIOS
//! scan), the MADT's CPU list and the HPET. Missing or broken tables are
//! warnings: the kernel then runs on the BSP alone.

use acpi::{AcpiHandler, AcpiTables, HpetInfo, PhysicalMapping};
use axiom_kernel::bootinfo::{scan_bios_for_rsdp, BootInfo, Rsdp};
use axiom_kernel::madt::{read_madt, MadtInfo};
use core::ptr::NonNull;

use crate::mem::{paging::map_firmware, BootPhysMem};
use crate::telemetry;

/// ACPI tables are read in place through the identity map.
#[derive(Clone)]
struct IdentityAcpi;

impl AcpiHandler for IdentityAcpi {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
        if let Err(e) = map_firmware(phys as u64, size) {
            panic!("cannot map ACPI table at {phys:#x}+{size:#x}: {e}");
        }
        let ptr = NonNull::new(phys as *mut T).expect("ACPI table at physical address 0");
        // SAFETY: [phys, phys+size) is now mapped at the same virtual address.
        unsafe { PhysicalMapping::new(phys, ptr, size, size, self.clone()) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// What ACPI told us.
pub struct Platform {
    pub rsdp: Option<Rsdp>,
    pub madt: Option<MadtInfo>,
    pub hpet_base: Option<u64>,
}

pub fn discover(info: &BootInfo) -> Platform {
    let rsdp = info.rsdp.or_else(|| scan_bios_for_rsdp(&BootPhysMem));
    let Some(rsdp) = rsdp else {
        telemetry::warning(format_args!(
            "no ACPI RSDP found (no Multiboot2 tag, nothing in the BIOS areas): no MADT, running on the BSP alone"
        ));
        return Platform { rsdp: None, madt: None, hpet_base: None };
    };
    let (revision, root) = rsdp.root_table();
    // SAFETY: the root address comes from a checksum-validated RSDP and the
    // handler maps physical memory faithfully.
    let madt = match unsafe { read_madt(IdentityAcpi, revision, root) } {
        Ok(m) => Some(m),
        Err(e) => {
            telemetry::warning(format_args!("{e}: running on the BSP alone"));
            None
        }
    };
    // SAFETY: as above.
    let hpet_base = unsafe { AcpiTables::from_rsdt(IdentityAcpi, revision, root as usize) }
        .ok()
        .and_then(|t| HpetInfo::new(&t).ok())
        .map(|h| h.base_address as u64);
    Platform { rsdp: Some(rsdp), madt, hpet_base }
}
