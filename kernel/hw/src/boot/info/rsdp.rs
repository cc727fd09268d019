//! The ACPI Root System Description Pointer: parsed and checksum-checked
//! from Multiboot2's copy, or found by scanning the BIOS areas.

use super::{le_u16, le_u32, le_u64, PhysMem};
use core::fmt;

const SIGNATURE: &[u8; 8] = b"RSD PTR ";
const V1_LEN: usize = 20;
const V2_LEN: usize = 36;

/// Where the RSDP was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsdpSource {
    Multiboot2Tag,
    BiosScan,
}

impl RsdpSource {
    pub fn name(self) -> &'static str {
        match self {
            RsdpSource::Multiboot2Tag => "multiboot2",
            RsdpSource::BiosScan => "bios-scan",
        }
    }
}

/// The parts of the RSDP the kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    /// 0 = ACPI 1.0 (RSDT only), 2+ = XSDT available.
    pub revision: u8,
    pub rsdt_address: u32,
    /// The XSDT address (revision 2+, non-zero).
    pub xsdt_address: Option<u64>,
    pub oem_id: [u8; 6],
    pub source: RsdpSource,
}

impl Rsdp {
    /// Root table to hand to the ACPI parser: (revision, address). The XSDT
    /// wins when present, as the ACPI specification asks.
    pub fn root_table(&self) -> (u8, u64) {
        match self.xsdt_address {
            Some(x) => (self.revision.max(2), x),
            None => (0, self.rsdt_address as u64),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsdpError {
    TooShort(usize),
    BadSignature,
    BadChecksum,
    BadExtendedChecksum,
}

impl fmt::Display for RsdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RsdpError::TooShort(n) => write!(f, "RSDP is only {n} bytes"),
            RsdpError::BadSignature => write!(f, "RSDP signature is not \"RSD PTR \""),
            RsdpError::BadChecksum => write!(f, "RSDP checksum is wrong"),
            RsdpError::BadExtendedChecksum => write!(f, "RSDP extended checksum is wrong"),
        }
    }
}

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b)) == 0
}

/// Validate and decode an RSDP from its bytes.
pub fn parse_rsdp(bytes: &[u8], source: RsdpSource) -> Result<Rsdp, RsdpError> {
    if bytes.len() < V1_LEN {
        return Err(RsdpError::TooShort(bytes.len()));
    }
    if &bytes[..8] != SIGNATURE {
        return Err(RsdpError::BadSignature);
    }
    if !checksum_ok(&bytes[..V1_LEN]) {
        return Err(RsdpError::BadChecksum);
    }
    let revision = bytes[15];
    let mut oem_id = [0u8; 6];
    oem_id.copy_from_slice(&bytes[9..15]);
    let rsdt_address = le_u32(bytes, 16);
    let mut xsdt_address = None;
    if revision >= 2 {
        if bytes.len() < V2_LEN {
            return Err(RsdpError::TooShort(bytes.len()));
        }
        let length = le_u32(bytes, 20) as usize;
        let ext_len = length.clamp(V2_LEN, bytes.len());
        if !checksum_ok(&bytes[..ext_len]) {
            return Err(RsdpError::BadExtendedChecksum);
        }
        let x = le_u64(bytes, 24);
        if x != 0 {
            xsdt_address = Some(x);
        }
    }
    Ok(Rsdp { revision, rsdt_address, xsdt_address, oem_id, source })
}

/// The legacy BIOS search: the first KiB of the EBDA, then 0xE0000..0xFFFFF,
/// on 16-byte boundaries. Finds nothing on UEFI machines (use the Multiboot2
/// tag there).
pub fn scan_bios_for_rsdp(mem: &dyn PhysMem) -> Option<Rsdp> {
    let mut areas = [(0u64, 0usize); 2];
    if let Some(seg) = mem.read(0x40E, 2) {
        let ebda = (le_u16(seg, 0) as u64) << 4;
        if (0x80000..0xA0000).contains(&ebda) {
            areas[0] = (ebda, 1024);
        }
    }
    areas[1] = (0xE0000, 0x20000);
    for (base, len) in areas {
        if len == 0 {
            continue;
        }
        let Some(area) = mem.read(base, len) else { continue };
        let mut off = 0;
        while off + V1_LEN <= area.len() {
            if &area[off..off + 8] == SIGNATURE {
                // Give the parser up to the v2 length when it is in the area.
                let end = (off + V2_LEN).min(area.len());
                if let Ok(r) = parse_rsdp(&area[off..end], RsdpSource::BiosScan) {
                    return Some(r);
                }
            }
            off += 16;
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::boot::info::fixture::FakeMem;
    use std::vec::Vec;

    /// An RSDP as firmware writes it, with both checksums fixed.
    pub fn make_rsdp(revision: u8, rsdt: u32, xsdt: u64) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(SIGNATURE);
        v.push(0); // checksum
        v.extend_from_slice(b"AXIOM ");
        v.push(revision);
        v.extend_from_slice(&rsdt.to_le_bytes());
        if revision >= 2 {
            v.extend_from_slice(&(V2_LEN as u32).to_le_bytes());
            v.extend_from_slice(&xsdt.to_le_bytes());
            v.push(0); // extended checksum
            v.extend_from_slice(&[0, 0, 0]);
        }
        let sum = v[..V1_LEN].iter().fold(0u8, |s, &b| s.wrapping_add(b));
        v[8] = 0u8.wrapping_sub(sum);
        if revision >= 2 {
            let sum = v.iter().fold(0u8, |s, &b| s.wrapping_add(b));
            v[32] = 0u8.wrapping_sub(sum);
        }
        v
    }

    #[test]
    fn parses_v1_and_v2() {
        let r = parse_rsdp(&make_rsdp(0, 0x7FE1234, 0), RsdpSource::Multiboot2Tag).unwrap();
        assert_eq!(r.revision, 0);
        assert_eq!(r.root_table(), (0, 0x7FE1234));
        assert_eq!(&r.oem_id, b"AXIOM ");
        let r = parse_rsdp(&make_rsdp(2, 0x1000, 0x1_2345_6000), RsdpSource::Multiboot2Tag).unwrap();
        assert_eq!(r.xsdt_address, Some(0x1_2345_6000));
        assert_eq!(r.root_table(), (2, 0x1_2345_6000));
    }

    #[test]
    fn rejects_bad_rsdp() {
        let mut v = make_rsdp(2, 0x1000, 0x2000);
        assert_eq!(parse_rsdp(&v[..10], RsdpSource::BiosScan), Err(RsdpError::TooShort(10)));
        v[30] ^= 1;
        assert_eq!(parse_rsdp(&v, RsdpSource::BiosScan), Err(RsdpError::BadExtendedChecksum));
        v[16] ^= 1;
        assert_eq!(parse_rsdp(&v, RsdpSource::BiosScan), Err(RsdpError::BadChecksum));
        v[0] = b'X';
        assert_eq!(parse_rsdp(&v, RsdpSource::BiosScan), Err(RsdpError::BadSignature));
    }

    #[test]
    fn bios_scan_finds_rsdp_in_ebda_and_rom_area() {
        // In the BIOS ROM area, after a decoy with a broken checksum.
        let mut rom = std::vec![0u8; 0x20000];
        let mut decoy = make_rsdp(0, 0xBAD, 0);
        decoy[8] ^= 0xFF;
        rom[0x100..0x100 + decoy.len()].copy_from_slice(&decoy);
        let good = make_rsdp(0, 0xE1000, 0);
        rom[0xF5A0..0xF5A0 + good.len()].copy_from_slice(&good);
        let mut mem = FakeMem::default();
        mem.place(0x40E, std::vec![0, 0, 0, 0]); // EBDA segment 0: ignored
        mem.place(0xE0000, rom);
        assert_eq!(scan_bios_for_rsdp(&mem).unwrap().rsdt_address, 0xE1000);

        // In the EBDA (segment 0x9FC0 -> 0x9FC00).
        let mut mem = FakeMem::default();
        mem.place(0x40E, 0x9FC0u16.to_le_bytes().to_vec());
        let mut ebda = std::vec![0u8; 1024];
        let r = make_rsdp(2, 0x1, 0x7FFE_0000);
        ebda[0x20..0x20 + r.len()].copy_from_slice(&r);
        mem.place(0x9FC00, ebda);
        mem.place(0xE0000, std::vec![0u8; 0x20000]);
        assert_eq!(scan_bios_for_rsdp(&mem).unwrap().xsdt_address, Some(0x7FFE_0000));

        // Nowhere.
        let mut mem = FakeMem::default();
        mem.place(0xE0000, std::vec![0u8; 0x20000]);
        assert!(scan_bios_for_rsdp(&mem).is_none());
    }
}
