//! PCI Express enhanced configuration access (ECAM): each function's 4 KiB
//! configuration space is memory-mapped at
//! `base + (bus - start_bus) << 20 | device << 15 | function << 12`.
//! The base comes from the ACPI MCFG table.

use alloc::vec::Vec;
use core::fmt;

use super::{Bdf, ConfigAccess};
use crate::hw::Registers;

/// One MCFG allocation: an ECAM window for a segment's bus range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct McfgEntry {
    pub base: u64,
    pub segment: u16,
    pub start_bus: u8,
    pub end_bus: u8,
}

impl McfgEntry {
    /// Bytes of the ECAM window (1 MiB per bus).
    pub fn window_bytes(&self) -> u64 {
        (self.end_bus as u64 - self.start_bus as u64 + 1) << 20
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum McfgError {
    TooShort { len: usize },
    BadSignature,
    BadLength { header: u32, available: usize },
    BadChecksum,
}

impl fmt::Display for McfgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            McfgError::TooShort { len } => write!(f, "MCFG table too short ({len} bytes)"),
            McfgError::BadSignature => write!(f, "not an MCFG table (signature mismatch)"),
            McfgError::BadLength { header, available } => write!(f, "MCFG length field {header} exceeds the {available} bytes available"),
            McfgError::BadChecksum => write!(f, "MCFG checksum mismatch"),
        }
    }
}

/// Parses a whole MCFG table (36-byte ACPI header, 8 reserved bytes, then
/// 16-byte allocation entries). Entries with end_bus < start_bus are dropped.
pub fn parse_mcfg(table: &[u8]) -> Result<Vec<McfgEntry>, McfgError> {
    const HEADER: usize = 44;
    if table.len() < HEADER {
        return Err(McfgError::TooShort { len: table.len() });
    }
    if &table[0..4] != b"MCFG" {
        return Err(McfgError::BadSignature);
    }
    let length = u32::from_le_bytes(table[4..8].try_into().unwrap());
    if length as usize > table.len() || (length as usize) < HEADER {
        return Err(McfgError::BadLength { header: length, available: table.len() });
    }
    let table = &table[..length as usize];
    if table.iter().fold(0u8, |s, b| s.wrapping_add(*b)) != 0 {
        return Err(McfgError::BadChecksum);
    }
    Ok(table[HEADER..]
        .chunks_exact(16)
        .map(|e| McfgEntry {
            base: u64::from_le_bytes(e[0..8].try_into().unwrap()),
            segment: u16::from_le_bytes(e[8..10].try_into().unwrap()),
            start_bus: e[10],
            end_bus: e[11],
        })
        .filter(|e| e.end_bus >= e.start_bus)
        .collect())
}

/// ECAM access through a mapped window (`regs` covers `entry.window_bytes()`).
pub struct EcamConfig<R: Registers> {
    regs: R,
    entry: McfgEntry,
}

impl<R: Registers> EcamConfig<R> {
    pub fn new(regs: R, entry: McfgEntry) -> Self {
        Self { regs, entry }
    }

    pub fn offset(&self, bdf: Bdf, offset: u16) -> usize {
        ((bdf.bus - self.entry.start_bus) as usize) << 20 | (bdf.device as usize & 0x1F) << 15 | (bdf.function as usize & 7) << 12 | (offset as usize & 0xFFC)
    }

    fn check(&self, bdf: Bdf, offset: u16) {
        assert!(
            bdf.segment == self.entry.segment && bdf.bus >= self.entry.start_bus && bdf.bus <= self.entry.end_bus && offset < 4096,
            "PCI {bdf} offset {offset:#x} is outside this ECAM window"
        );
    }
}

impl<R: Registers> ConfigAccess for EcamConfig<R> {
    fn segment(&self) -> u16 {
        self.entry.segment
    }

    fn bus_range(&self) -> (u8, u8) {
        (self.entry.start_bus, self.entry.end_bus)
    }

    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        self.check(bdf, offset);
        self.regs.read32(self.offset(bdf, offset))
    }

    fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        self.check(bdf, offset);
        self.regs.write32(self.offset(bdf, offset), value)
    }
}
