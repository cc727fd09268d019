//! ACPI, read once at boot through the `acpi` crate with one handler: the
//! RSDP (from Multiboot2, else the BIOS-area scan), the MADT's CPU list
//! ([`madt`]), the HPET's address and the MCFG's PCI ECAM windows. Missing
//! or broken tables are reported in [`Platform`] for the kernel to warn
//! about: without a MADT the kernel runs on the boot CPU alone; without an
//! MCFG PCI falls back to the configuration ports.
//!
//! The crate trusts a table's length field when it reads fixed fields or
//! entries, so every table is checked to be long enough (and the MADT's
//! entries to tile it) before the crate reads it.

pub mod madt;

use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;

use acpi::hpet::HpetTable;
use acpi::mcfg::Mcfg;
use acpi::{AcpiError, AcpiHandler, AcpiTable, AcpiTables, PhysicalMapping};
use axiom_drivers::pci::EcamWindow;

use crate::boot::info::{scan_bios_for_rsdp, BootInfo, Rsdp};
pub use madt::{CpuEntry, MadtError, MadtInfo};

/// ACPI tables are read in place through the identity map; anything outside
/// RAM is mapped uncached first.
#[derive(Clone)]
struct IdentityMapped;

impl AcpiHandler for IdentityMapped {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
        if let Err(e) = crate::mem::paging::map_firmware(phys as u64, size) {
            panic!("cannot map ACPI table at {phys:#x}+{size:#x}: {e}");
        }
        let ptr = NonNull::new(phys as *mut T).expect("ACPI table at physical address 0");
        // SAFETY: [phys, phys+size) is now mapped at the same virtual address
        // (identity map) for the rest of the kernel's life.
        unsafe { PhysicalMapping::new(phys, ptr, size, size, self.clone()) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// Why the ACPI tables (or one of them) cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// No RSDP: no Multiboot2 tag, nothing in the BIOS areas.
    NoRsdp,
    /// The root table (RSDT/XSDT) is unusable.
    RootTable(&'static str),
    /// The table is absent or fails its checksum.
    Missing(&'static str),
    /// The table's length cannot hold its fixed fields.
    TooShort { table: &'static str, length: usize },
    Madt(MadtError),
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::NoRsdp => write!(f, "no ACPI RSDP found (no Multiboot2 tag, nothing in the BIOS areas)"),
            TableError::RootTable(why) => write!(f, "ACPI root table (RSDT/XSDT) is invalid: {why}"),
            TableError::Missing(table) => write!(f, "ACPI has no valid {table} table"),
            TableError::TooShort { table, length } => write!(f, "ACPI {table} table is too short ({length} bytes)"),
            TableError::Madt(e) => write!(f, "{e}"),
        }
    }
}

fn root_table_error(e: AcpiError) -> TableError {
    TableError::RootTable(match e {
        AcpiError::SdtInvalidSignature(_) => "wrong signature",
        AcpiError::SdtInvalidOemId(_) | AcpiError::SdtInvalidTableId(_) => "invalid OEM fields",
        AcpiError::SdtInvalidChecksum(_) => "bad checksum",
        _ => "unreadable",
    })
}

/// The whole table behind a `find_table` mapping, as bytes (the crate maps
/// and checksums exactly its length field's worth).
fn table_bytes<H: AcpiHandler, T: AcpiTable>(mapping: &PhysicalMapping<H, T>) -> &[u8] {
    // SAFETY: the mapping covers `region_length` bytes from `virtual_start`
    // (checksummed by the crate) and lives as long as the borrow.
    unsafe { core::slice::from_raw_parts(mapping.virtual_start().as_ptr() as *const u8, mapping.region_length()) }
}

/// The table `T`, at least `min_len` bytes long.
fn find<H: AcpiHandler, T: AcpiTable>(tables: &AcpiTables<H>, name: &'static str, min_len: usize) -> Result<PhysicalMapping<H, T>, TableError> {
    let mapping = tables.find_table::<T>().map_err(|_| TableError::Missing(name))?;
    if mapping.region_length() < min_len {
        return Err(TableError::TooShort { table: name, length: mapping.region_length() });
    }
    Ok(mapping)
}

/// The HPET's register block (system memory), from the HPET table.
fn hpet_base<H: AcpiHandler>(tables: &AcpiTables<H>) -> Result<u64, TableError> {
    let mapping = find::<H, HpetTable>(tables, "HPET", 56)?;
    let bytes = table_bytes(&mapping);
    // The base address is a Generic Address Structure at byte 40: address
    // space (0 = system memory) first, the 64-bit address at byte 44.
    let address = u64::from_le_bytes(bytes[44..52].try_into().expect("8 bytes"));
    if bytes[40] != 0 || address == 0 {
        return Err(TableError::Missing("HPET (in system memory)"));
    }
    Ok(address)
}

/// Every ECAM window of the MCFG (no MCFG: none, the legacy ports serve).
fn ecam_windows<H: AcpiHandler>(tables: &AcpiTables<H>) -> Result<Vec<EcamWindow>, TableError> {
    let mapping = match find::<H, Mcfg>(tables, "MCFG", 44) {
        Err(TableError::Missing(_)) => return Ok(Vec::new()),
        other => other?,
    };
    Ok(mapping
        .get()
        .entries()
        .iter()
        .filter(|e| e.bus_number_end >= e.bus_number_start)
        .map(|e| EcamWindow { base: e.base_address, segment: e.pci_segment_group, start_bus: e.bus_number_start, end_bus: e.bus_number_end })
        .collect())
}

/// The root table at `root` (`revision` 0: RSDT, 2+: XSDT).
///
/// # Safety
/// `root` must be the root table address from a checksum-valid RSDP (or,
/// in host tests, the address of a live fixture), and `handler` must map
/// physical memory faithfully.
unsafe fn open<H: AcpiHandler>(handler: H, revision: u8, root: u64) -> Result<AcpiTables<H>, TableError> {
    // SAFETY: forwarded to the caller's contract.
    unsafe { AcpiTables::from_rsdt(handler, revision, root as usize) }.map_err(root_table_error)
}

/// What ACPI told us.
pub struct Platform {
    pub rsdp: Option<Rsdp>,
    /// The CPU list (an error: run on the boot CPU alone).
    pub madt: Result<MadtInfo, TableError>,
    /// The HPET's register block.
    pub hpet: Result<u64, TableError>,
    /// PCI ECAM windows (an error: use the configuration ports).
    pub ecam: Result<Vec<EcamWindow>, TableError>,
}

impl Platform {
    fn read<H: AcpiHandler>(rsdp: Option<Rsdp>, tables: Result<AcpiTables<H>, TableError>) -> Platform {
        match tables {
            Ok(t) => Platform { rsdp, madt: madt::read(&t), hpet: hpet_base(&t), ecam: ecam_windows(&t) },
            Err(e) => Platform { rsdp, madt: Err(e), hpet: Err(e), ecam: Err(e) },
        }
    }
}

/// Read the ACPI tables the kernel uses (once, on the boot CPU, after
/// `mem::init`).
pub fn discover(info: &BootInfo) -> Platform {
    let rsdp = info.rsdp.or_else(|| scan_bios_for_rsdp(&crate::mem::BootPhysMem));
    let Some(rsdp) = rsdp else {
        return Platform::read::<IdentityMapped>(None, Err(TableError::NoRsdp));
    };
    let (revision, root) = rsdp.root_table();
    // SAFETY: the root address comes from a checksum-validated RSDP and the
    // handler maps physical memory faithfully.
    let tables = unsafe { open(IdentityMapped, revision, root) };
    Platform::read(Some(rsdp), tables)
}

#[cfg(test)]
pub(crate) mod fixture {
    //! ACPI tables built in host memory: "physical" addresses are pointers.
    use super::*;
    use std::boxed::Box;
    use std::vec::Vec;

    #[derive(Clone)]
    pub struct HostMemory;

    impl AcpiHandler for HostMemory {
        unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
            // SAFETY: fixtures hand out addresses of live boxed byte buffers.
            unsafe { PhysicalMapping::new(phys, NonNull::new(phys as *mut T).unwrap(), size, size, self.clone()) }
        }
        fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
    }

    /// A table with a valid SDT header and checksum.
    pub fn sdt(signature: &[u8; 4], body: &[u8]) -> Box<[u8]> {
        let mut t = Vec::new();
        t.extend_from_slice(signature);
        t.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
        t.push(1); // revision
        t.push(0); // checksum
        t.extend_from_slice(b"AXIOM ");
        t.extend_from_slice(b"FIXTURE ");
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(b"AXM ");
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(body);
        fix_checksum(&mut t);
        t.into_boxed_slice()
    }

    pub fn fix_checksum(t: &mut [u8]) {
        t[9] = 0;
        let sum = t.iter().fold(0u8, |s, &b| s.wrapping_add(b));
        t[9] = 0u8.wrapping_sub(sum);
    }

    /// An XSDT pointing at `tables`.
    pub fn xsdt(tables: &[&[u8]]) -> Box<[u8]> {
        let mut ptrs = Vec::new();
        for t in tables {
            ptrs.extend_from_slice(&(t.as_ptr() as u64).to_le_bytes());
        }
        sdt(b"XSDT", &ptrs)
    }

    /// The tables behind `xsdt`.
    pub fn open_xsdt(xsdt: &[u8]) -> Result<AcpiTables<HostMemory>, TableError> {
        // SAFETY: HostMemory maps host memory; the fixtures outlive the use.
        unsafe { open(HostMemory, 2, xsdt.as_ptr() as u64) }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::*;
    use super::*;
    use std::vec::Vec;

    fn mcfg(entries: &[(u64, u16, u8, u8)]) -> Vec<u8> {
        let mut body = std::vec![0u8; 8];
        for &(base, seg, s, e) in entries {
            body.extend_from_slice(&base.to_le_bytes());
            body.extend_from_slice(&seg.to_le_bytes());
            body.extend_from_slice(&[s, e, 0, 0, 0, 0]);
        }
        sdt(b"MCFG", &body).into_vec()
    }

    fn hpet(address_space: u8, base: u64) -> Vec<u8> {
        let mut body = std::vec![0u8; 20];
        body[0..4].copy_from_slice(&0x8086_A201u32.to_le_bytes()); // event timer block id
        body[4] = address_space;
        body[8..16].copy_from_slice(&base.to_le_bytes());
        sdt(b"HPET", &body).into_vec()
    }

    #[test]
    fn mcfg_windows_come_from_the_acpi_crate() {
        let table = mcfg(&[(0xB000_0000, 0, 0, 255), (0xC000_0000, 1, 4, 3)]);
        let x = xsdt(&[&table]);
        let t = open_xsdt(&x).unwrap();
        let w = ecam_windows(&t).unwrap();
        assert_eq!(w, [EcamWindow { base: 0xB000_0000, segment: 0, start_bus: 0, end_bus: 255 }], "an empty bus range is dropped");
        assert_eq!(w[0].window_bytes(), 256 << 20);
    }

    #[test]
    fn broken_or_missing_mcfg() {
        // A flipped byte: the checksum fails and the table is not used.
        let mut table = mcfg(&[(0xB000_0000, 0, 0, 255)]);
        table[50] ^= 1;
        let x = xsdt(&[&table]);
        assert_eq!(ecam_windows(&open_xsdt(&x).unwrap()), Ok(Vec::new()), "a table failing its checksum is absent");
        // A header claiming fewer bytes than the fixed part.
        let mut short = mcfg(&[]);
        short.truncate(40);
        short[4..8].copy_from_slice(&40u32.to_le_bytes());
        fix_checksum(&mut short);
        let x = xsdt(&[&short]);
        assert_eq!(ecam_windows(&open_xsdt(&x).unwrap()), Err(TableError::TooShort { table: "MCFG", length: 40 }));
        // No MCFG at all (QEMU's pc machine): no windows.
        let other = hpet(0, 0xFED0_0000);
        let x = xsdt(&[&other]);
        assert_eq!(ecam_windows(&open_xsdt(&x).unwrap()), Ok(Vec::new()));
    }

    #[test]
    fn hpet_base_in_system_memory_only() {
        let table = hpet(0, 0xFED0_0000);
        let x = xsdt(&[&table]);
        assert_eq!(hpet_base(&open_xsdt(&x).unwrap()), Ok(0xFED0_0000));
        let table = hpet(1, 0x40); // I/O space: not usable (and the crate would assert)
        let x = xsdt(&[&table]);
        assert!(hpet_base(&open_xsdt(&x).unwrap()).is_err());
        let mut short = hpet(0, 0xFED0_0000);
        short.truncate(48);
        short[4..8].copy_from_slice(&48u32.to_le_bytes());
        fix_checksum(&mut short);
        let x = xsdt(&[&short]);
        assert_eq!(hpet_base(&open_xsdt(&x).unwrap()), Err(TableError::TooShort { table: "HPET", length: 48 }));
    }

    #[test]
    fn broken_root_table() {
        let table = hpet(0, 0xFED0_0000);
        let mut x = xsdt(&[&table]).into_vec();
        x[9] ^= 1;
        assert!(matches!(open_xsdt(&x), Err(TableError::RootTable("bad checksum"))));
    }
}
