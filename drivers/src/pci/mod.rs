//! PCI discovery: configuration space through ECAM (windows from ACPI's MCFG)
//! or the legacy 0xCF8/0xCFC ports, bus enumeration, BAR decoding and device
//! enabling.

mod ecam;
mod port;

pub use ecam::{EcamConfig, EcamWindow};
pub use port::{PortConfig, CONFIG_ADDRESS, CONFIG_DATA};

use alloc::vec::Vec;
use bit_field::BitField;
use core::fmt;

/// Segment/bus/device/function address of one PCI function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bdf {
    pub segment: u16,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}.{}", self.segment, self.bus, self.device, self.function)
    }
}

/// Configuration-space offsets and bits used here (PCI Local Bus 3.0, ch. 6).
pub mod cfg {
    pub const VENDOR_ID: u16 = 0x00;
    pub const COMMAND: u16 = 0x04;
    pub const CLASS_REV: u16 = 0x08;
    pub const HEADER_TYPE: u16 = 0x0C; // byte 0x0E within this dword
    pub const BAR0: u16 = 0x10;

    pub const CMD_IO_SPACE: u16 = 1 << 0;
    pub const CMD_MEMORY_SPACE: u16 = 1 << 1;
    pub const CMD_BUS_MASTER: u16 = 1 << 2;
    pub const CMD_INTX_DISABLE: u16 = 1 << 10;
}

/// Class 01 (mass storage), subclass 08 (non-volatile memory), prog-if 02 (NVM Express).
pub const CLASS_NVME: (u8, u8, u8) = (0x01, 0x08, 0x02);

/// 32-bit configuration space access for one PCI segment.
pub trait ConfigAccess {
    fn segment(&self) -> u16;
    /// Buses this mechanism can reach.
    fn bus_range(&self) -> (u8, u8);
    /// `offset` is dword-aligned and below the mechanism's limit (256 or 4096).
    fn read32(&self, bdf: Bdf, offset: u16) -> u32;
    fn write32(&self, bdf: Bdf, offset: u16, value: u32);

    fn read16(&self, bdf: Bdf, offset: u16) -> u16 {
        (self.read32(bdf, offset & !3) >> ((offset & 2) * 8)) as u16
    }

    /// Read-modify-write of the 16-bit half of a dword. Used for COMMAND,
    /// whose upper half (STATUS) has write-1-to-clear bits: we write zeros there.
    fn write16_low(&self, bdf: Bdf, offset: u16, value: u16) {
        debug_assert!(offset.is_multiple_of(4));
        self.write32(bdf, offset, value as u32);
    }
}

/// One function found by enumeration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciFunction {
    pub bdf: Bdf,
    pub vendor_id: u16,
    pub device_id: u16,
    pub class: u8,
    pub subclass: u8,
    pub prog_if: u8,
    pub header_type: u8,
}

impl PciFunction {
    fn read(cfg: &dyn ConfigAccess, bdf: Bdf) -> Option<Self> {
        let id = cfg.read32(bdf, cfg::VENDOR_ID);
        let vendor_id = id as u16;
        if vendor_id == 0xFFFF || vendor_id == 0 {
            return None;
        }
        let class_rev = cfg.read32(bdf, cfg::CLASS_REV);
        let header = cfg.read32(bdf, cfg::HEADER_TYPE);
        Some(Self {
            bdf,
            vendor_id,
            device_id: (id >> 16) as u16,
            class: class_rev.get_bits(24..32) as u8,
            subclass: class_rev.get_bits(16..24) as u8,
            prog_if: class_rev.get_bits(8..16) as u8,
            header_type: header.get_bits(16..24) as u8,
        })
    }

    pub fn is_nvme(&self) -> bool {
        (self.class, self.subclass, self.prog_if) == CLASS_NVME
    }
}

/// Every function on every bus the mechanism reaches (a brute-force scan:
/// it needs no bridge programming and finds devices behind any bridge the
/// firmware configured).
pub fn enumerate(cfg: &dyn ConfigAccess) -> Vec<PciFunction> {
    let mut found = Vec::new();
    let (first, last) = cfg.bus_range();
    for bus in first..=last {
        for device in 0..32u8 {
            let bdf = Bdf { segment: cfg.segment(), bus, device, function: 0 };
            let Some(f0) = PciFunction::read(cfg, bdf) else { continue };
            let multifunction = f0.header_type.get_bit(7);
            found.push(f0);
            if multifunction {
                for function in 1..8u8 {
                    if let Some(f) = PciFunction::read(cfg, Bdf { function, ..bdf }) {
                        found.push(f);
                    }
                }
            }
        }
    }
    found
}

/// NVMe controllers (class 01:08:02) among the enumerated functions.
pub fn find_nvme(cfg: &dyn ConfigAccess) -> Vec<PciFunction> {
    enumerate(cfg).into_iter().filter(|f| f.is_nvme()).collect()
}

/// A decoded Base Address Register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    Memory { address: u64, size: u64, is_64bit: bool, prefetchable: bool },
    Io { port: u32, size: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarError {
    /// The BAR decodes no space (size 0): not implemented by the device.
    NotImplemented { bdf: Bdf, index: u8 },
    /// Firmware left the BAR unassigned (address 0).
    Unassigned { bdf: Bdf, index: u8 },
    /// Index 5 cannot hold a 64-bit BAR, or the type field is reserved.
    Malformed { bdf: Bdf, index: u8, raw: u32 },
}

impl fmt::Display for BarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarError::NotImplemented { bdf, index } => write!(f, "PCI {bdf}: BAR{index} is not implemented"),
            BarError::Unassigned { bdf, index } => write!(f, "PCI {bdf}: BAR{index} was not assigned an address by the firmware"),
            BarError::Malformed { bdf, index, raw } => write!(f, "PCI {bdf}: BAR{index} has a reserved type (raw {raw:#010x})"),
        }
    }
}

/// Decodes and sizes BAR `index` (0..=5). Memory and I/O decoding are turned
/// off while the size is probed, then the command register is restored.
pub fn read_bar(cfg: &dyn ConfigAccess, bdf: Bdf, index: u8) -> Result<Bar, BarError> {
    assert!(index < 6);
    let off = cfg::BAR0 + index as u16 * 4;
    let raw = cfg.read32(bdf, off);
    let command = cfg.read16(bdf, cfg::COMMAND);
    cfg.write16_low(bdf, cfg::COMMAND, command & !(cfg::CMD_MEMORY_SPACE | cfg::CMD_IO_SPACE));
    let result = size_bar(cfg, bdf, index, off, raw);
    cfg.write16_low(bdf, cfg::COMMAND, command);
    result
}

fn size_bar(cfg: &dyn ConfigAccess, bdf: Bdf, index: u8, off: u16, raw: u32) -> Result<Bar, BarError> {
    if raw.get_bit(0) {
        cfg.write32(bdf, off, !0);
        let mask = cfg.read32(bdf, off) & !0x3;
        cfg.write32(bdf, off, raw);
        if mask == 0 {
            return Err(BarError::NotImplemented { bdf, index });
        }
        let size = (!mask).wrapping_add(1) & 0xFFFF;
        return Ok(Bar::Io { port: raw & !0x3, size });
    }
    let prefetchable = raw.get_bit(3);
    match raw.get_bits(1..3) {
        0b00 => {
            cfg.write32(bdf, off, !0);
            let mask = cfg.read32(bdf, off) & !0xF;
            cfg.write32(bdf, off, raw);
            if mask == 0 {
                return Err(BarError::NotImplemented { bdf, index });
            }
            let size = (!mask).wrapping_add(1) as u64;
            let address = (raw & !0xF) as u64;
            if address == 0 {
                return Err(BarError::Unassigned { bdf, index });
            }
            Ok(Bar::Memory { address, size, is_64bit: false, prefetchable })
        }
        0b10 if index < 5 => {
            let raw_hi = cfg.read32(bdf, off + 4);
            cfg.write32(bdf, off, !0);
            cfg.write32(bdf, off + 4, !0);
            let mask_lo = cfg.read32(bdf, off) & !0xF;
            let mask_hi = cfg.read32(bdf, off + 4);
            cfg.write32(bdf, off, raw);
            cfg.write32(bdf, off + 4, raw_hi);
            let mask = ((mask_hi as u64) << 32) | mask_lo as u64;
            if mask == 0 {
                return Err(BarError::NotImplemented { bdf, index });
            }
            let size = (!mask).wrapping_add(1);
            let address = ((raw_hi as u64) << 32) | (raw & !0xF) as u64;
            if address == 0 {
                return Err(BarError::Unassigned { bdf, index });
            }
            Ok(Bar::Memory { address, size, is_64bit: true, prefetchable })
        }
        _ => Err(BarError::Malformed { bdf, index, raw }),
    }
}

/// Turns on memory decoding and bus mastering (the device DMAs into our
/// buffers) and turns off legacy INTx (we poll). Returns the new command value.
pub fn enable_polled_dma(cfg: &dyn ConfigAccess, bdf: Bdf) -> u16 {
    let command = cfg.read16(bdf, cfg::COMMAND);
    let new = command | cfg::CMD_MEMORY_SPACE | cfg::CMD_BUS_MASTER | cfg::CMD_INTX_DISABLE;
    cfg.write16_low(bdf, cfg::COMMAND, new);
    cfg.read16(bdf, cfg::COMMAND)
}

#[cfg(test)]
mod tests;
