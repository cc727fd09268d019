//! PCI Express enhanced configuration access (ECAM): each function's 4 KiB
//! configuration space is memory-mapped at
//! `base + (bus - start_bus) << 20 | device << 15 | function << 12`.
//! The windows come from ACPI's MCFG table (read by the kernel's hardware
//! layer through the `acpi` crate).

use super::{Bdf, ConfigAccess};
use crate::hw::Registers;

/// One ECAM window: a segment's bus range (one MCFG allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcamWindow {
    pub base: u64,
    pub segment: u16,
    pub start_bus: u8,
    pub end_bus: u8,
}

impl EcamWindow {
    /// Bytes of the window (1 MiB per bus).
    pub fn window_bytes(&self) -> u64 {
        (self.end_bus as u64 - self.start_bus as u64 + 1) << 20
    }
}

/// ECAM access through a mapped window (`regs` covers `window.window_bytes()`).
pub struct EcamConfig<R: Registers> {
    regs: R,
    window: EcamWindow,
}

impl<R: Registers> EcamConfig<R> {
    pub fn new(regs: R, window: EcamWindow) -> Self {
        Self { regs, window }
    }

    pub fn offset(&self, bdf: Bdf, offset: u16) -> usize {
        ((bdf.bus - self.window.start_bus) as usize) << 20 | (bdf.device as usize & 0x1F) << 15 | (bdf.function as usize & 7) << 12 | (offset as usize & 0xFFC)
    }

    fn check(&self, bdf: Bdf, offset: u16) {
        assert!(
            bdf.segment == self.window.segment && bdf.bus >= self.window.start_bus && bdf.bus <= self.window.end_bus && offset < 4096,
            "PCI {bdf} offset {offset:#x} is outside this ECAM window"
        );
    }
}

impl<R: Registers> ConfigAccess for EcamConfig<R> {
    fn segment(&self) -> u16 {
        self.window.segment
    }

    fn bus_range(&self) -> (u8, u8) {
        (self.window.start_bus, self.window.end_bus)
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
