//! One physically contiguous block of RAM reserved for good (the tensor
//! region), handed out in parts: each part is checked to lie inside the
//! block and to overlap no part handed out before, so every part is owned
//! by exactly one user for the rest of the kernel's life.

use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;

use super::slot_ring::SlotMemory;

/// Why a part cannot be carved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CarveError {
    /// `[offset, offset + len)` is empty or runs past the region's `region` bytes.
    OutOfBounds { offset: u64, len: u64, region: u64 },
    /// It overlaps the part `[other, other + other_len)` carved before.
    Overlaps { offset: u64, len: u64, other: u64, other_len: u64 },
    /// `offset` is not a multiple of `align` (for typed parts).
    Misaligned { offset: u64, align: u64 },
}

impl fmt::Display for CarveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CarveError::OutOfBounds { offset, len, region } => {
                write!(f, "region part {offset:#x}+{len:#x} lies outside the {region:#x}-byte region (or is empty)")
            }
            CarveError::Overlaps { offset, len, other, other_len } => {
                write!(f, "region part {offset:#x}+{len:#x} overlaps the part {other:#x}+{other_len:#x} already handed out")
            }
            CarveError::Misaligned { offset, align } => write!(f, "region part at {offset:#x} is not {align}-byte aligned"),
        }
    }
}

/// A reserved block and the parts handed out so far.
#[derive(Debug)]
pub struct Region {
    base: NonNull<u8>,
    len: u64,
    /// Carved parts as (offset, len), sorted by offset, disjoint.
    parts: Vec<(u64, u64)>,
}

// SAFETY: a Region exclusively owns its block (see `new`); moving it to
// another CPU moves that ownership.
unsafe impl Send for Region {}

impl Region {
    /// # Safety
    /// `[base, base + len)` must be valid, writable RAM (identity-mapped in
    /// the kernel) that nothing else uses, for the rest of the program.
    pub(crate) unsafe fn new(base: u64, len: u64) -> Region {
        Region { base: NonNull::new(base as *mut u8).expect("a region at address 0"), len, parts: Vec::new() }
    }

    /// Physical (and virtual) address of the first byte.
    pub fn phys(&self) -> u64 {
        self.base.as_ptr() as u64
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Record `[offset, offset + len)` as handed out; its address.
    fn claim(&mut self, offset: u64, len: u64) -> Result<*mut u8, CarveError> {
        let end = offset.checked_add(len).filter(|&e| len > 0 && e <= self.len);
        if end.is_none() || usize::try_from(len).is_err() {
            return Err(CarveError::OutOfBounds { offset, len, region: self.len });
        }
        let at = self.parts.partition_point(|&(o, _)| o < offset);
        let before = at.checked_sub(1).map(|i| self.parts[i]);
        let after = self.parts.get(at).copied();
        for (other, other_len) in before.into_iter().chain(after) {
            if offset < other + other_len && other < offset + len {
                return Err(CarveError::Overlaps { offset, len, other, other_len });
            }
        }
        self.parts.insert(at, (offset, len));
        Ok(self.base.as_ptr().wrapping_add(offset as usize))
    }

    /// The bytes at `[offset, offset + len)` as they are in RAM (to be filled
    /// by the caller or a device), for good.
    pub fn carve(&mut self, offset: u64, len: u64) -> Result<&'static mut [u8], CarveError> {
        let ptr = self.claim(offset, len)?;
        // SAFETY: the part lies inside the region, which is ours for good
        // (`new`), and overlaps no part handed out before (checked), so this
        // is the only reference to these bytes.
        Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len as usize) })
    }

    /// As [`Region::carve`], zeroed.
    pub fn carve_zeroed(&mut self, offset: u64, len: u64) -> Result<&'static mut [u8], CarveError> {
        let part = self.carve(offset, len)?;
        part.fill(0);
        Ok(part)
    }

    /// `count` zeroed `f32`s at `offset` (a multiple of 4).
    pub fn carve_f32_zeroed(&mut self, offset: u64, count: usize) -> Result<&'static mut [f32], CarveError> {
        let align = core::mem::align_of::<f32>() as u64;
        if !(self.phys() + offset).is_multiple_of(align) {
            return Err(CarveError::Misaligned { offset, align });
        }
        let bytes = self.carve_zeroed(offset, count as u64 * 4)?;
        // SAFETY: the bytes are aligned for f32 (checked), exclusively ours
        // (carved) and zero, which is the f32 value 0.0; `bytes` is consumed.
        Ok(unsafe { core::slice::from_raw_parts_mut(bytes.as_mut_ptr() as *mut f32, count) })
    }

    /// Memory for a [`super::slot_ring::SlotRing`]: one slot per
    /// `(offset, len)`, contents as they are (the device fills them).
    pub fn carve_slots(&mut self, parts: impl IntoIterator<Item = (u64, u64)>) -> Result<Vec<SlotMemory>, CarveError> {
        parts
            .into_iter()
            .map(|(offset, len)| {
                let ptr = self.claim(offset, len)?;
                // SAFETY: as in `carve`: inside the region, disjoint from every
                // other part, ours for good.
                Ok(unsafe { SlotMemory::new(ptr, len as usize) })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::boxed::Box;

    fn region(len: usize) -> Region {
        let block: &'static mut [u64] = Box::leak(std::vec![0xA5A5_A5A5_A5A5_A5A5u64; len / 8].into_boxed_slice());
        // SAFETY: a leaked host allocation, used by this region alone.
        unsafe { Region::new(block.as_mut_ptr() as u64, len as u64) }
    }

    #[test]
    fn parts_are_inside_and_disjoint() {
        let mut r = region(64 << 10);
        let a = r.carve(0, 4096).unwrap();
        a[4095] = 1;
        let b = r.carve_zeroed(8192, 100).unwrap();
        assert!(b.iter().all(|&x| x == 0));
        assert_eq!(b.as_ptr() as u64 - a.as_ptr() as u64, 8192);
        // Overlapping either neighbour, or an earlier part exactly, is refused.
        assert_eq!(r.carve(4000, 200).unwrap_err(), CarveError::Overlaps { offset: 4000, len: 200, other: 0, other_len: 4096 });
        assert_eq!(r.carve(8000, 200).unwrap_err(), CarveError::Overlaps { offset: 8000, len: 200, other: 8192, other_len: 100 });
        assert!(matches!(r.carve(8192, 100), Err(CarveError::Overlaps { .. })));
        assert!(matches!(r.carve(100, 10_000), Err(CarveError::Overlaps { .. })), "spanning a part");
        // The gap between parts is still free.
        assert_eq!(r.carve(4096, 4096).unwrap().len(), 4096);
        // Out of bounds, overflowing, empty.
        assert_eq!(r.carve(60 << 10, 8 << 10).unwrap_err(), CarveError::OutOfBounds { offset: 60 << 10, len: 8 << 10, region: 64 << 10 });
        assert!(matches!(r.carve(u64::MAX - 1, 4), Err(CarveError::OutOfBounds { .. })));
        assert!(matches!(r.carve(20_000, 0), Err(CarveError::OutOfBounds { .. })));
    }

    #[test]
    fn typed_and_slot_parts() {
        let mut r = region(64 << 10);
        let f = r.carve_f32_zeroed(16 << 10, 1000).unwrap();
        assert!(f.iter().all(|&x| x == 0.0));
        f[999] = 1.5;
        assert_eq!(r.carve_f32_zeroed(2, 4).unwrap_err(), CarveError::Misaligned { offset: 2, align: 4 });
        let slots = r.carve_slots([(0, 4096), (4096, 4096)]).unwrap();
        assert_eq!(slots.len(), 2);
        assert!(matches!(r.carve_slots([(32 << 10, 100), (4000, 8)]), Err(CarveError::Overlaps { .. })));
    }
}
