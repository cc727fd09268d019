//! The only places the drivers dereference raw addresses: a device register
//! block and DMA memory shared with a device; and the read buffer a device
//! writes into. Both use volatile accesses
//! (through the `volatile` crate) because the device reads and writes them
//! behind the compiler's back.

use core::ptr::NonNull;
use volatile::VolatilePtr;

use super::Registers;

/// A mapped (uncached) device register block.
#[derive(Clone, Debug)]
pub struct MmioRegion {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: an MmioRegion is only an address range; every access is a volatile
// read or write of one aligned register, which the device serializes. Which
// core may touch which register (admin vs. I/O doorbells) is decided by the
// driver's ownership of the queue objects, not by this type.
unsafe impl Send for MmioRegion {}
// SAFETY: as above; `&MmioRegion` only offers single volatile accesses.
unsafe impl Sync for MmioRegion {}

impl MmioRegion {
    /// # Safety
    /// `base..base+len` must be a mapped, uncached device register block that
    /// stays mapped for the life of this value and its clones, and no other
    /// code may treat that range as ordinary memory.
    pub unsafe fn new(base: *mut u8, len: usize) -> Self {
        Self { base: NonNull::new(base).expect("MMIO base must not be null"), len }
    }

    /// Address of the first register.
    pub fn base_address(&self) -> usize {
        self.base.as_ptr() as usize
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn reg32(&self, offset: usize) -> VolatilePtr<'_, u32> {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.len, "MMIO offset {offset:#x} outside the {:#x}-byte register block", self.len);
        // SAFETY: offset is in bounds and 4-aligned (checked above, and the
        // block base is page-aligned), and `new`'s contract says the block is
        // mapped device memory for our lifetime.
        unsafe { VolatilePtr::new(self.base.add(offset).cast::<u32>()) }
    }
}

impl Registers for MmioRegion {
    fn read32(&self, offset: usize) -> u32 {
        self.reg32(offset).read()
    }

    fn write32(&self, offset: usize, value: u32) {
        self.reg32(offset).write(value)
    }
}

/// Physically contiguous memory shared with a device: queues, PRP lists,
/// Identify buffers. Owned by exactly one driver object.
#[derive(Debug)]
pub struct DmaRegion {
    virt: NonNull<u8>,
    phys: u64,
    len: usize,
}

// SAFETY: a DmaRegion is exclusively owned memory (see `from_raw`); moving it
// to another core moves that ownership. The device's concurrent access is
// handled by volatile accesses and the NVMe queue protocol.
unsafe impl Send for DmaRegion {}

impl DmaRegion {
    /// # Safety
    /// `virt..virt+len` must be valid, writable memory that no one else uses
    /// for the life of this value, physically contiguous starting at `phys`,
    /// and cacheable-coherent with device DMA (true for RAM on x86).
    pub unsafe fn from_raw(virt: *mut u8, phys: u64, len: usize) -> Self {
        Self { virt: NonNull::new(virt).expect("DMA region must not be null"), phys, len }
    }

    pub fn phys(&self) -> u64 {
        self.phys
    }

    pub fn virt(&self) -> usize {
        self.virt.as_ptr() as usize
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn ptr<T>(&self, offset: usize) -> VolatilePtr<'_, T> {
        let size = core::mem::size_of::<T>();
        assert!(offset.is_multiple_of(size) && offset + size <= self.len, "DMA access at {offset:#x} outside the {:#x}-byte region", self.len);
        // SAFETY: in bounds and naturally aligned (regions are at least
        // 8-byte aligned, checked offset alignment above); `from_raw`'s
        // contract makes the memory ours.
        unsafe { VolatilePtr::new(self.virt.add(offset).cast::<T>()) }
    }

    pub fn read_u32(&self, offset: usize) -> u32 {
        self.ptr::<u32>(offset).read()
    }

    pub fn write_u32(&mut self, offset: usize, value: u32) {
        self.ptr::<u32>(offset).write(value)
    }

    pub fn read_u64(&self, offset: usize) -> u64 {
        self.ptr::<u64>(offset).read()
    }

    pub fn write_u64(&mut self, offset: usize, value: u64) {
        self.ptr::<u64>(offset).write(value)
    }

    /// Copies `out.len()` bytes starting at `offset` (e.g. an Identify page).
    pub fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        for (i, chunk) in out.chunks_mut(4).enumerate() {
            let word = self.read_u32(offset + i * 4).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    pub fn zero(&mut self) {
        for off in (0..self.len & !7).step_by(8) {
            self.write_u64(off, 0);
        }
    }
}

/// Where a read lands: a raw, DMA-able byte range owned by the caller until
/// the read completes (SPDK's `payload`). Not `Clone`: one buffer, one read,
/// one completion naming it (`nvme::ReadCompletion::target`).
#[derive(Debug)]
pub struct ReadBuffer {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: a ReadBuffer is an address range; the contract of `new` makes the
// memory the driver's to write until completion, wherever the owner runs.
unsafe impl Send for ReadBuffer {}

impl ReadBuffer {
    /// # Safety
    /// `ptr..ptr+len` must be writable memory mapped for DMA (the queue pair's
    /// `Dma::virt_to_phys` must translate it), and nothing may read or write
    /// it, or free it, from submission until the read's completion has been
    /// delivered (or the queue pair has failed and the controller is disabled).
    pub unsafe fn new(ptr: *mut u8, len: usize) -> Self {
        Self { ptr, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn addr(&self) -> usize {
        self.ptr as usize
    }
}
