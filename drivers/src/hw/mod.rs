//! The hardware seams of the drivers: everything a driver needs from the
//! machine goes through one of these small traits, so the kernel's hardware
//! layer can back them with real MMIO, port I/O and physical memory, and host
//! tests with models. `mmio` holds the only raw accesses: volatile register
//! and DMA-memory reads and writes.

mod mmio;

pub use mmio::{DmaRegion, MmioRegion, ReadBuffer};

/// 32/64-bit access to a device's memory-mapped register block (a PCI BAR).
///
/// Offsets are bytes from the start of the block. Implementations must use
/// uncached, volatile accesses; the NVMe driver relies on every call reaching
/// the device in program order.
pub trait Registers {
    fn read32(&self, offset: usize) -> u32;
    fn write32(&self, offset: usize, value: u32);

    /// A 64-bit register as two 32-bit accesses, low dword first (the NVMe
    /// spec allows this for CAP, ASQ and ACQ).
    fn read64(&self, offset: usize) -> u64 {
        let lo = self.read32(offset) as u64;
        let hi = self.read32(offset + 4) as u64;
        lo | (hi << 32)
    }

    fn write64(&self, offset: usize, value: u64) {
        self.write32(offset, value as u32);
        self.write32(offset + 4, (value >> 32) as u32);
    }
}

impl<T: Registers + ?Sized> Registers for &T {
    fn read32(&self, offset: usize) -> u32 {
        (**self).read32(offset)
    }
    fn write32(&self, offset: usize, value: u32) {
        (**self).write32(offset, value)
    }
    fn read64(&self, offset: usize) -> u64 {
        (**self).read64(offset)
    }
    fn write64(&self, offset: usize, value: u64) {
        (**self).write64(offset, value)
    }
}

/// The legacy PCI configuration mechanism's two 32-bit I/O ports:
/// CONFIG_ADDRESS (0xCF8) and CONFIG_DATA (0xCFC). The kernel's hardware
/// layer implements it over the real ports (it owns them); tests over models.
pub trait ConfigPorts {
    fn read_address(&self) -> u32;
    fn write_address(&self, value: u32);
    fn read_data(&self) -> u32;
    fn write_data(&self, value: u32);
}

/// Failure to allocate DMA memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaAllocError {
    pub bytes: usize,
    pub align: usize,
}

impl core::fmt::Display for DmaAllocError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "out of DMA memory: {} bytes aligned to {} could not be allocated", self.bytes, self.align)
    }
}

/// Memory a device can reach by physical address.
pub trait Dma {
    /// `bytes` of zeroed, physically contiguous memory aligned to `align`
    /// (a power of two; queues and PRP lists ask for the controller page size).
    /// The driver never frees it: queues live as long as the controller.
    fn alloc(&self, bytes: usize, align: usize) -> Result<DmaRegion, DmaAllocError>;

    /// Physical address of the byte at virtual address `virt`, or `None` if it
    /// is not mapped. The mapping must stay physically contiguous at least to
    /// the end of the 4 KiB page holding `virt`; the driver checks contiguity
    /// across larger device pages itself.
    fn virt_to_phys(&self, virt: usize) -> Option<u64>;
}

impl<T: Dma + ?Sized> Dma for &T {
    fn alloc(&self, bytes: usize, align: usize) -> Result<DmaRegion, DmaAllocError> {
        (**self).alloc(bytes, align)
    }
    fn virt_to_phys(&self, virt: usize) -> Option<u64> {
        (**self).virt_to_phys(virt)
    }
}

/// A monotonic clock for timeouts.
pub trait Clock {
    fn now_ns(&self) -> u64;
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }
}
