//! Memory for devices: zeroed, physically contiguous, identity-mapped (the
//! virtual and the physical address are equal). Never freed: queues and
//! buffers live as long as their device.

use core::ptr::NonNull;

use axiom_drivers::hw::{Dma, DmaAllocError, DmaRegion};

use super::frames::Placement;
use super::{alloc_frames, OutOfMemory};

/// A DMA buffer owned by the CPU side: its bytes, and the physical address
/// to hand to a device. It is never freed; [`DmaBuffer::leak`] keeps it as a
/// plain slice for good.
#[derive(Debug)]
pub struct DmaBuffer {
    virt: NonNull<u8>,
    len: usize,
}

// SAFETY: a DmaBuffer exclusively owns its memory (carved for it alone);
// moving it to another CPU moves that ownership.
unsafe impl Send for DmaBuffer {}

impl DmaBuffer {
    /// The physical address (equal to the virtual one).
    pub fn phys(&self) -> u64 {
        self.virt.as_ptr() as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes of RAM owned by this buffer (see `alloc`),
        // identity-mapped; no device holds them while the CPU side owns them.
        unsafe { core::slice::from_raw_parts(self.virt.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow unique.
        unsafe { core::slice::from_raw_parts_mut(self.virt.as_ptr(), self.len) }
    }

    /// The bytes, for the rest of the kernel's life.
    pub fn leak(self) -> &'static mut [u8] {
        // SAFETY: the buffer is never freed and `self` is consumed, so this
        // is the only reference to its bytes from now on.
        unsafe { core::slice::from_raw_parts_mut(self.virt.as_ptr(), self.len) }
    }
}

/// `bytes` of zeroed, physically contiguous memory aligned to `align` (a
/// power of two; rounded up to 4 KiB).
pub fn alloc(bytes: usize, align: usize) -> Result<DmaBuffer, OutOfMemory> {
    if bytes == 0 || !align.is_power_of_two() {
        return Err(OutOfMemory { bytes: bytes as u64, align: align as u64 });
    }
    let phys = alloc_frames(bytes as u64, align as u64, Placement::LowestBelow(u64::MAX))?;
    let virt = NonNull::new(phys as *mut u8).ok_or(OutOfMemory { bytes: bytes as u64, align: align as u64 })?;
    // SAFETY: the frames were just carved from free, identity-mapped RAM and
    // nobody else holds them.
    unsafe { core::ptr::write_bytes(virt.as_ptr(), 0, bytes) };
    Ok(DmaBuffer { virt, len: bytes })
}

/// The drivers' DMA memory: the kernel's contiguous allocator. All RAM is
/// identity-mapped, so a RAM pointer is its own bus address.
#[derive(Clone, Copy, Debug)]
pub struct DeviceDma;

impl Dma for DeviceDma {
    fn alloc(&self, bytes: usize, align: usize) -> Result<DmaRegion, DmaAllocError> {
        let buf = alloc(bytes, align.max(4096)).map_err(|_| DmaAllocError { bytes, align })?;
        let (virt, len) = (buf.virt.as_ptr(), buf.len);
        // SAFETY: freshly carved, zeroed, identity-mapped frames that only
        // this region will own (the buffer is consumed; DMA memory is never
        // freed); RAM on x86 is coherent with device DMA.
        Ok(unsafe { DmaRegion::from_raw(virt, virt as u64, len) })
    }

    fn virt_to_phys(&self, virt: usize) -> Option<u64> {
        // Identity map: no page walk on the read path.
        Some(virt as u64)
    }
}
