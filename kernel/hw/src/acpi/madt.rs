//! The CPU list from ACPI's MADT, read through the `acpi` crate (which finds
//! the table through the RSDT/XSDT and checks its checksum).
//!
//! The crate's MADT entry iterator trusts entry lengths (a zero length loops
//! forever, an overlong one reads past the table), so the entry structure is
//! checked on the raw bytes first: a corrupt MADT is a clear error.

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables};
use core::fmt;

use super::TableError;
use crate::MAX_CPUS;

/// One processor entry (Local APIC, type 0, or Local x2APIC, type 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuEntry {
    pub apic_id: u32,
    /// ACPI processor UID.
    pub uid: u32,
    /// Flags bit 0: usable now.
    pub enabled: bool,
    /// Flags bit 1: may be enabled at run time (hot-add); not started at boot.
    pub online_capable: bool,
    /// Listed by a Local x2APIC entry.
    pub x2apic_entry: bool,
}

/// What the kernel needs from the MADT.
#[derive(Clone, Debug)]
pub struct MadtInfo {
    cpus: [CpuEntry; MAX_CPUS],
    count: usize,
    /// Enabled processors beyond [`MAX_CPUS`], ignored.
    pub cpus_over_limit: usize,
    /// Local APIC physical address (the override entry wins).
    pub local_apic_address: u64,
    /// PCAT_COMPAT: legacy 8259 PICs present (they must be masked).
    pub has_8259: bool,
    pub io_apics: usize,
}

impl MadtInfo {
    /// Every processor entry, in table order, duplicates removed.
    pub fn cpus(&self) -> &[CpuEntry] {
        &self.cpus[..self.count]
    }

    /// Processors usable at boot.
    pub fn enabled_cpus(&self) -> impl Iterator<Item = &CpuEntry> {
        self.cpus().iter().filter(|c| c.enabled)
    }

    fn push(&mut self, entry: CpuEntry) {
        if let Some(existing) = self.cpus[..self.count].iter_mut().find(|c| c.apic_id == entry.apic_id) {
            // Firmware may list a CPU in both entry kinds: keep one, enabled if either says so.
            existing.enabled |= entry.enabled;
            existing.online_capable |= entry.online_capable;
            return;
        }
        if self.count == MAX_CPUS {
            if entry.enabled {
                self.cpus_over_limit += 1;
            }
            return;
        }
        self.cpus[self.count] = entry;
        self.count += 1;
    }
}

/// A MADT whose entries do not tile it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MadtError {
    /// An entry has an impossible length.
    CorruptEntry { offset: usize, length: u8 },
}

impl fmt::Display for MadtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MadtError::CorruptEntry { offset, length } => {
                write!(f, "MADT is corrupt: entry at byte {offset} has length {length}")
            }
        }
    }
}

/// Size of the MADT's fixed part (SDT header + LAPIC address + flags).
const MADT_HEADER_LEN: usize = 44;

/// Check that the entries tile the table exactly, each at least 2 bytes long
/// and at least as long as its type's structure.
pub fn check_entry_lengths(table: &[u8]) -> Result<(), MadtError> {
    let mut off = MADT_HEADER_LEN;
    while off < table.len() {
        if off + 2 > table.len() {
            return Err(MadtError::CorruptEntry { offset: off, length: 0 });
        }
        let (kind, length) = (table[off], table[off + 1]);
        let min = match kind {
            0 => 8,  // Local APIC
            1 => 12, // I/O APIC
            5 => 12, // Local APIC address override
            9 => 16, // Local x2APIC
            _ => 2,
        };
        if (length as usize) < min || off + length as usize > table.len() {
            return Err(MadtError::CorruptEntry { offset: off, length });
        }
        off += length as usize;
    }
    Ok(())
}

/// The processors of the MADT ("APIC" table) among `tables`.
pub fn read<H: AcpiHandler>(tables: &AcpiTables<H>) -> Result<MadtInfo, TableError> {
    let mapping = super::find::<H, Madt>(tables, "MADT (APIC)", MADT_HEADER_LEN)?;
    check_entry_lengths(super::table_bytes(&mapping)).map_err(TableError::Madt)?;
    let madt = mapping.get();

    let mut info = MadtInfo {
        cpus: [CpuEntry { apic_id: 0, uid: 0, enabled: false, online_capable: false, x2apic_entry: false }; MAX_CPUS],
        count: 0,
        cpus_over_limit: 0,
        local_apic_address: madt.local_apic_address as u64,
        has_8259: madt.supports_8259(),
        io_apics: 0,
    };
    for entry in madt.entries() {
        match entry {
            MadtEntry::LocalApic(e) => {
                let flags = e.flags;
                info.push(CpuEntry {
                    apic_id: e.apic_id as u32,
                    uid: e.processor_id as u32,
                    enabled: flags & 1 != 0,
                    online_capable: flags & 2 != 0,
                    x2apic_entry: false,
                });
            }
            MadtEntry::LocalX2Apic(e) => {
                let (flags, apic_id, uid) = (e.flags, e.x2apic_id, e.processor_uid);
                info.push(CpuEntry {
                    apic_id,
                    uid,
                    enabled: flags & 1 != 0,
                    online_capable: flags & 2 != 0,
                    x2apic_entry: true,
                });
            }
            MadtEntry::LocalApicAddressOverride(e) => info.local_apic_address = e.local_apic_address,
            MadtEntry::IoApic(_) => info.io_apics += 1,
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::fixture::{open_xsdt, sdt, xsdt};
    use std::vec::Vec;

    fn lapic(uid: u8, id: u8, flags: u32) -> Vec<u8> {
        let mut e = std::vec![0u8, 8, uid, id];
        e.extend_from_slice(&flags.to_le_bytes());
        e
    }

    fn x2apic(id: u32, uid: u32, flags: u32) -> Vec<u8> {
        let mut e = std::vec![9u8, 16, 0, 0];
        e.extend_from_slice(&id.to_le_bytes());
        e.extend_from_slice(&flags.to_le_bytes());
        e.extend_from_slice(&uid.to_le_bytes());
        e
    }

    fn madt_body(lapic_addr: u32, flags: u32, entries: &[Vec<u8>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&lapic_addr.to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
        for e in entries {
            b.extend_from_slice(e);
        }
        b
    }

    /// Build XSDT -> [FACP-like decoy, MADT] and read it.
    fn read(madt: &[u8]) -> Result<MadtInfo, TableError> {
        let decoy = sdt(b"HPET", &[0u8; 20]);
        let madt = sdt(b"APIC", madt);
        let x = xsdt(&[&decoy, &madt]);
        super::read(&open_xsdt(&x)?)
    }

    fn corrupt(offset: usize, length: u8) -> TableError {
        TableError::Madt(MadtError::CorruptEntry { offset, length })
    }

    #[test]
    fn lists_xapic_and_x2apic_cpus_with_flags() {
        let io_apic = {
            let mut e = std::vec![1u8, 12, 0, 0];
            e.extend_from_slice(&0xFEC0_0000u32.to_le_bytes());
            e.extend_from_slice(&0u32.to_le_bytes());
            e
        };
        let body = madt_body(
            0xFEE0_0000,
            1,
            &[
                lapic(0, 0, 1),
                lapic(1, 1, 1),
                lapic(2, 2, 0),        // disabled
                lapic(3, 3, 2),        // online capable, not enabled
                io_apic,
                std::vec![0x42, 4, 0, 0], // reserved type: skipped
                x2apic(300, 4, 1),     // beyond xAPIC's 8 bits
                x2apic(1, 1, 1),       // duplicate of a Local APIC entry
            ],
        );
        let info = read(&body).unwrap();
        assert_eq!(info.local_apic_address, 0xFEE0_0000);
        assert!(info.has_8259);
        assert_eq!(info.io_apics, 1);
        let ids: Vec<u32> = info.cpus().iter().map(|c| c.apic_id).collect();
        assert_eq!(ids, [0, 1, 2, 3, 300]);
        let enabled: Vec<u32> = info.enabled_cpus().map(|c| c.apic_id).collect();
        assert_eq!(enabled, [0, 1, 300]);
        assert!(!info.cpus()[2].enabled && !info.cpus()[2].online_capable);
        assert!(!info.cpus()[3].enabled && info.cpus()[3].online_capable);
        assert!(info.cpus()[4].x2apic_entry);
        assert_eq!(info.cpus()[4].uid, 4);
    }

    #[test]
    fn address_override_wins() {
        let mut ovr = std::vec![5u8, 12, 0, 0];
        ovr.extend_from_slice(&0x1_FEE0_0000u64.to_le_bytes());
        let info = read(&madt_body(0xFEE0_0000, 0, &[lapic(0, 0, 1), ovr])).unwrap();
        assert_eq!(info.local_apic_address, 0x1_FEE0_0000);
        assert!(!info.has_8259);
    }

    #[test]
    fn corrupt_entries_are_errors_not_hangs() {
        // Zero-length entry (would loop forever in the crate's iterator).
        let body = madt_body(0xFEE0_0000, 0, &[lapic(0, 0, 1), std::vec![0x80, 0]]);
        assert_eq!(read(&body).unwrap_err(), corrupt(52, 0));
        // Entry running past the end of the table.
        let body = madt_body(0xFEE0_0000, 0, &[lapic(0, 0, 1), std::vec![9, 16, 0, 0]]);
        assert_eq!(read(&body).unwrap_err(), corrupt(52, 16));
        // Local APIC entry too short for its type.
        let body = madt_body(0xFEE0_0000, 0, &[std::vec![0, 4, 0, 0]]);
        assert_eq!(read(&body).unwrap_err(), corrupt(44, 4));
    }

    #[test]
    fn missing_or_broken_tables() {
        // No MADT in the XSDT.
        let decoy = sdt(b"HPET", &[0u8; 20]);
        let x = xsdt(&[&decoy]);
        assert_eq!(super::read(&open_xsdt(&x).unwrap()).unwrap_err(), TableError::Missing("MADT (APIC)"));
        // MADT with a bad checksum is not used.
        let mut madt = sdt(b"APIC", &madt_body(0xFEE0_0000, 0, &[lapic(0, 0, 1)])).into_vec();
        madt[9] ^= 1;
        let x = xsdt(&[&madt]);
        assert_eq!(super::read(&open_xsdt(&x).unwrap()).unwrap_err(), TableError::Missing("MADT (APIC)"));
        // Root table with a bad checksum.
        let mut x = xsdt(&[&madt]).into_vec();
        x[9] ^= 1;
        assert!(matches!(open_xsdt(&x), Err(TableError::RootTable(_))));
        // A MADT too short for its fixed part.
        let short = sdt(b"APIC", &[0u8; 4]);
        let x = xsdt(&[&short]);
        assert_eq!(super::read(&open_xsdt(&x).unwrap()).unwrap_err(), TableError::TooShort { table: "MADT (APIC)", length: 40 });
    }
}
