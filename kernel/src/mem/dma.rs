//! Memory for devices: zeroed, physically contiguous, identity-mapped, so the
//! virtual and physical addresses are equal. Never freed (queues and buffers
//! live as long as their device).

use super::{alloc_frames, OutOfMemory};
use axiom_kernel::physmem::Placement;

/// A DMA buffer: `virt` for the CPU, `phys` for the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaBuffer {
    pub virt: *mut u8,
    pub phys: u64,
    pub len: usize,
}

// SAFETY: a DmaBuffer is a description of memory (addresses and length), not
// an owner with aliasing rules; users synchronise their accesses.
unsafe impl Send for DmaBuffer {}
unsafe impl Sync for DmaBuffer {}

/// `bytes` of zeroed, physically contiguous memory aligned to `align` (a power
/// of two; rounded up to 4 KiB).
pub fn alloc(bytes: usize, align: usize) -> Result<DmaBuffer, OutOfMemory> {
    if bytes == 0 || !align.is_power_of_two() {
        return Err(OutOfMemory { bytes: bytes as u64, align: align as u64 });
    }
    let phys = alloc_frames(bytes as u64, align as u64, Placement::LowestBelow(u64::MAX))?;
    let virt = phys as *mut u8;
    // SAFETY: the frames were just carved from free, identity-mapped RAM and
    // nobody else holds them.
    unsafe { core::ptr::write_bytes(virt, 0, bytes) };
    Ok(DmaBuffer { virt, phys, len: bytes })
}
