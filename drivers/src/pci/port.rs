//! Configuration mechanism #1: address to port 0xCF8, data at 0xCFC.
//! Reaches segment 0 and the first 256 bytes of each function (enough for the
//! header, BARs and the command register).

use super::{Bdf, ConfigAccess};
use crate::hw::ConfigPorts;

pub const CONFIG_ADDRESS: u16 = 0xCF8;
pub const CONFIG_DATA: u16 = 0xCFC;

pub struct PortConfig<P: ConfigPorts> {
    ports: P,
}

impl<P: ConfigPorts> PortConfig<P> {
    pub fn new(ports: P) -> Self {
        Self { ports }
    }

    /// The CONFIG_ADDRESS value: enable bit, bus, device, function, dword offset.
    pub fn address(bdf: Bdf, offset: u16) -> u32 {
        0x8000_0000 | (bdf.bus as u32) << 16 | (bdf.device as u32 & 0x1F) << 11 | (bdf.function as u32 & 0x7) << 8 | (offset as u32 & 0xFC)
    }

    /// Whether mechanism #1 answers at all: CONFIG_ADDRESS must read back
    /// what was written (the classic probe).
    pub fn present(&self) -> bool {
        let saved = self.ports.read_address();
        self.ports.write_address(0x8000_0000);
        let ok = self.ports.read_address() == 0x8000_0000;
        self.ports.write_address(saved);
        ok
    }
}

impl<P: ConfigPorts> ConfigAccess for PortConfig<P> {
    fn segment(&self) -> u16 {
        0
    }

    fn bus_range(&self) -> (u8, u8) {
        (0, 255)
    }

    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        assert!(bdf.segment == 0 && offset < 256, "port I/O config reaches segment 0, offsets < 256");
        self.ports.write_address(Self::address(bdf, offset));
        self.ports.read_data()
    }

    fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        assert!(bdf.segment == 0 && offset < 256, "port I/O config reaches segment 0, offsets < 256");
        self.ports.write_address(Self::address(bdf, offset));
        self.ports.write_data(value);
    }
}
